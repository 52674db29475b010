"""``python -m trading_constructs.diagram cdk.out``."""

from trading_constructs.diagram.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
