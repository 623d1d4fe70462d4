from experiments.runner_tmp import main

raise SystemExit(main())
