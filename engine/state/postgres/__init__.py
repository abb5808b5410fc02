"""The team state on PostgreSQL (issue 21): one lock, one journal and one history for every workstation.

Imported only when `RUNBOOK_STATE` / `--state` names a database (`engine.state.open_state`): psycopg is
never loaded for the file backend. `backend.PostgresState` is the backend; `connecting`, `schema`, `lock`,
`writing` and `history` are its parts.
"""
