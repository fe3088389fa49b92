from lpq.cli import main

raise SystemExit(main())
