-- Once, for a database made by an earlier compose file, in which the superuser (bwv) owned
-- everything and the application connected as it. Run it as that superuser after
-- deploy/postgres-init/10-bwv-roles.sh has made bwv_owner and bwv_app (see README, "Deploy with
-- docker compose"); then start the stack: the migrate service grants bwv_app its rights.
-- Tables carry their sequences with them when their owner changes.
DO $$
DECLARE t text;
BEGIN
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
        EXECUTE format('ALTER TABLE public.%I OWNER TO bwv_owner', t);
    END LOOP;
END
$$;
ALTER FUNCTION public.bwv_audit_append_only() OWNER TO bwv_owner;
