"""The application layer, without Qt: what the window, the command line, the self-test and
load runs share. One way to build a call's request (`requests`), tokens (`tokens`), the
embedded local gateway (`local_gateway`), redaction (`redact`), the softphone behind the
window (`phone`) with its history rows (`call_setup`, `call_details`), and scripted runs
from the window (`script_runs`). See the README's "How the code is laid out"."""
