from respmatrix.cli import main

raise SystemExit(main())
