"""Four eyes on a step: approvals bound to exactly what the step will run, given by another operator.

`planned` renders a step's `approval:` into the plan; `document` is what an approval covers (canonical JSON
and its sha256); `desk` is the seam where requests and approvals live (`engine.state` chooses it with the
backend: the database, or SSH signatures next to the run's files); `waiting` is the run's side (request,
wait, journal), `commands/approve.py` and `commands/approvals.py` the approver's.
"""
