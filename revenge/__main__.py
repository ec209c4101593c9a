from revenge.cli import main

raise SystemExit(main())
