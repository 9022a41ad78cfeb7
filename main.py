"""``python main.py`` opens the desktop app; ``python main.py COMMAND ...`` runs the headless CLI."""
import sys

from app.entry import main

if __name__ == "__main__":
    sys.exit(main())
