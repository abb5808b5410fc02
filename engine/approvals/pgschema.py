"""The approvals' tables on the team state (schema v2), and the rules the DATABASE enforces.

The approver of a row in `runbook.approvals` is the login of the session that inserted it: a trigger
overwrites whatever the client wrote with `session_user`, and refuses the row (whatever client inserts it,
psql included) when that login asked for the approval or started the run, is not a member of the operators'
group, is not a member of one of the request's `from` roles, or already answered this document (also a
unique key). Operators may only SELECT and INSERT approvals: none can be edited or deleted afterwards (the
foreign keys RESTRICT; only `runbook.prune`, for a run ended before the age asked, removes them). Each
approval notifies the channel `runbook_approvals`, so a waiting run goes on at once.
"""

from __future__ import annotations

CHANNEL = "runbook_approvals"

V2 = f"""
CREATE TABLE runbook.approval_requests (
    run_id text NOT NULL REFERENCES runbook.runs ON DELETE RESTRICT,
    step text NOT NULL,
    sha256 text NOT NULL,
    document text NOT NULL,
    required integer NOT NULL CHECK (required >= 0),
    from_roles text[] NOT NULL DEFAULT '{{}}',
    requester text NOT NULL DEFAULT session_user,
    since timestamptz NOT NULL DEFAULT now(),
    closed timestamptz,
    PRIMARY KEY (run_id, step, sha256)
);
CREATE INDEX approval_requests_open ON runbook.approval_requests (since) WHERE closed IS NULL;
CREATE TABLE runbook.approvals (
    run_id text NOT NULL,
    step text NOT NULL,
    sha256 text NOT NULL,
    approver text NOT NULL DEFAULT session_user,
    verdict text NOT NULL CHECK (verdict IN ('approved', 'rejected')),
    comment text NOT NULL DEFAULT '',
    given timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (run_id, step, sha256) REFERENCES runbook.approval_requests ON DELETE RESTRICT,
    UNIQUE (run_id, step, sha256, approver)
);
CREATE FUNCTION runbook.approval_request_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.requester := session_user;
    NEW.since := now();
    NEW.closed := NULL;
    RETURN NEW;
END
$$;
CREATE TRIGGER approval_requests_guard BEFORE INSERT ON runbook.approval_requests
    FOR EACH ROW EXECUTE FUNCTION runbook.approval_request_guard();
CREATE FUNCTION runbook.approval_guard() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, runbook AS $$
DECLARE
    asked runbook.approval_requests;
    starter text;
    group_role text;
BEGIN
    NEW.approver := session_user;
    NEW.given := now();
    SELECT * INTO asked FROM runbook.approval_requests
     WHERE run_id = NEW.run_id AND step = NEW.step AND sha256 = NEW.sha256;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no approval was asked for run %, step %, document sha256 %',
            NEW.run_id, NEW.step, NEW.sha256 USING ERRCODE = 'check_violation';
    END IF;
    SELECT login INTO starter FROM runbook.runs WHERE run_id = NEW.run_id;
    IF NEW.approver = asked.requester OR NEW.approver = starter THEN
        RAISE EXCEPTION 'four eyes: % asked for this approval (run %, step %): another operator must give it',
            NEW.approver, NEW.run_id, NEW.step USING ERRCODE = 'check_violation';
    END IF;
    SELECT operators INTO group_role FROM runbook.meta;
    IF NOT pg_has_role(session_user, group_role, 'MEMBER') THEN
        RAISE EXCEPTION '% is not a runbook operator (not a member of %): cannot approve',
            NEW.approver, group_role USING ERRCODE = 'check_violation';
    END IF;
    IF cardinality(asked.from_roles) > 0 AND NOT EXISTS (
        SELECT 1 FROM unnest(asked.from_roles) AS r(name)
         WHERE EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.name)
           AND pg_has_role(session_user, r.name, 'MEMBER')) THEN
        RAISE EXCEPTION '% is not a member of %: this step is approved by them only',
            NEW.approver, array_to_string(asked.from_roles, ', ') USING ERRCODE = 'check_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM runbook.approvals a WHERE a.run_id = NEW.run_id AND a.step = NEW.step
                 AND a.sha256 = NEW.sha256 AND a.approver = NEW.approver) THEN
        RAISE EXCEPTION '% already answered this document (run %, step %): approvals are by distinct people',
            NEW.approver, NEW.run_id, NEW.step USING ERRCODE = 'unique_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER approvals_guard BEFORE INSERT ON runbook.approvals
    FOR EACH ROW EXECUTE FUNCTION runbook.approval_guard();
CREATE FUNCTION runbook.approval_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', NEW.run_id || ' ' || NEW.step);
    RETURN NULL;
END
$$;
CREATE TRIGGER approvals_notify AFTER INSERT ON runbook.approvals
    FOR EACH ROW EXECUTE FUNCTION runbook.approval_notify();
"""

GRANTS = """
GRANT SELECT, INSERT ON runbook.approval_requests TO {role};
GRANT UPDATE (closed) ON runbook.approval_requests TO {role};
GRANT SELECT, INSERT ON runbook.approvals TO {role};
"""
