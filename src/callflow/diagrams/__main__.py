"""``python -m callflow.diagrams``: the state diagrams and the spec's message flows."""

import sys

from callflow.diagrams import main
from callflow.testing import spec_flows

raise SystemExit(main(sys.argv[1:], play_flows=spec_flows))
