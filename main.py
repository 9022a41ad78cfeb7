"""``python main.py`` opens the desktop app; ``python main.py COMMAND ...`` runs the headless CLI."""
import sys

try:
    from core.interrupt import exit_on_interrupt_during_startup

    exit_on_interrupt_during_startup()       # Ctrl-C while torch imports: one line, exit 130
    from app.entry import main
except KeyboardInterrupt:   # Ctrl-C in the few milliseconds before that: still one line
    sys.stderr.write("interrupted\n")
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(main())
