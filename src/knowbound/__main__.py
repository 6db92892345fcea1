from knowbound.cli import main

raise SystemExit(main())
