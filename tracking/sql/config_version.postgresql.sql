-- tracking_campaign.config_version on PostgreSQL: the stamp of a campaign's routing configuration. Voice routing
-- caches each campaign's configuration per process and reloads it when the version it reads with the tracking
-- number differs (routing/services/config.py). These triggers bump it on every write to a row that configuration
-- reads, whoever writes it (admin, API, commands, a shell's QuerySet.update(), raw SQL), in the writing
-- transaction: nothing in Python has to remember to.
--
--   tracking_campaign         its own columns, except the hot path's (rr_position) and config_version itself
--   tracking_campaignhandler  its campaign (before and after a move)
--   tracking_ivrmenu, tracking_ivroption, tracking_conversionrule, tracking_webhook, tracking_routingtable,
--   tracking_conversiondestination (whether a campaign sends conversions to ad platforms: tracking/services/ad_uploads.py)
--                             likewise
--   tracking_tagginghours     its campaign; a schedule without one tags every campaign: all of them
--   tracking_handler          the campaigns listing it (tracking_campaignhandler)
--   numbers_receivingnumber   the campaigns listing a handler on it
--
-- A row inserted into or deleted from the tables of the last two needs no trigger: a new handler or line is
-- in no campaign yet, and a deletion first deletes the rows that list it (their own triggers bump). Routing
-- table rows, tracking numbers and calls are read per call, never cached: no trigger.
-- tests/tracking/test_config_version.py checks every table the configuration reads against this file.
--
-- The current definition: installed by the latest migration that changes it (tracking.db_triggers).
-- Idempotent: installing it again replaces it.

-- A change to the campaign's own row: the new version is the stored one plus one, whatever the statement wrote
-- (a whole-row save writing back the version it read cannot undo a bump).
CREATE OR REPLACE FUNCTION tracking_config_version_campaign() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.config_version := OLD.config_version + 1;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS tracking_config_version_campaign ON tracking_campaign;
CREATE TRIGGER tracking_config_version_campaign
    BEFORE UPDATE OF name, campaign_id, enabled, routing_strategy, nearest_fallback, route_to_destination, sticky_routing,
        greeting_kind, greeting_text, greeting_voice, greeting_language, greeting_url, ivr_prompt, ivr_timeout, ivr_repeat,
        ivr_default_digit, record_calls, no_answer_message, failsafe_number, company_phone, fallback_credit, queue_enabled,
        queue_max_wait, queue_hold_music_url, queue_message, spam_action, spam_threshold, spam_rules, created_at, updated_at
    ON tracking_campaign FOR EACH ROW EXECUTE FUNCTION tracking_config_version_campaign();

-- A row of a campaign (its handler list, menus, keys, rules, webhooks, lookup tables).
CREATE OR REPLACE FUNCTION tracking_config_version_part() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id = NEW.campaign_id;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id = OLD.campaign_id;
    ELSE
        UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id IN (OLD.campaign_id, NEW.campaign_id);
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS tracking_config_version_campaignhandler ON tracking_campaignhandler;
CREATE TRIGGER tracking_config_version_campaignhandler AFTER INSERT OR UPDATE OR DELETE ON tracking_campaignhandler
    FOR EACH ROW EXECUTE FUNCTION tracking_config_version_part();

DROP TRIGGER IF EXISTS tracking_config_version_ivrmenu ON tracking_ivrmenu;
CREATE TRIGGER tracking_config_version_ivrmenu AFTER INSERT OR UPDATE OR DELETE ON tracking_ivrmenu
    FOR EACH ROW EXECUTE FUNCTION tracking_config_version_part();

DROP TRIGGER IF EXISTS tracking_config_version_ivroption ON tracking_ivroption;
CREATE TRIGGER tracking_config_version_ivroption AFTER INSERT OR UPDATE OR DELETE ON tracking_ivroption
    FOR EACH ROW EXECUTE FUNCTION tracking_config_version_part();

DROP TRIGGER IF EXISTS tracking_config_version_conversionrule ON tracking_conversionrule;
CREATE TRIGGER tracking_config_version_conversionrule AFTER INSERT OR UPDATE OR DELETE ON tracking_conversionrule
    FOR EACH ROW EXECUTE FUNCTION tracking_config_version_part();

DROP TRIGGER IF EXISTS tracking_config_version_webhook ON tracking_webhook;
CREATE TRIGGER tracking_config_version_webhook AFTER INSERT OR UPDATE OR DELETE ON tracking_webhook
    FOR EACH ROW EXECUTE FUNCTION tracking_config_version_part();

DROP TRIGGER IF EXISTS tracking_config_version_conversiondestination ON tracking_conversiondestination;
CREATE TRIGGER tracking_config_version_conversiondestination AFTER INSERT OR UPDATE OR DELETE ON tracking_conversiondestination
    FOR EACH ROW EXECUTE FUNCTION tracking_config_version_part();

DROP TRIGGER IF EXISTS tracking_config_version_routingtable ON tracking_routingtable;
CREATE TRIGGER tracking_config_version_routingtable AFTER INSERT OR UPDATE OR DELETE ON tracking_routingtable
    FOR EACH ROW EXECUTE FUNCTION tracking_config_version_part();

-- Tagging hours: a schedule without a campaign tags every campaign's calls.
CREATE OR REPLACE FUNCTION tracking_config_version_tagginghours() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_OP <> 'INSERT' AND OLD.campaign_id IS NULL) OR (TG_OP <> 'DELETE' AND NEW.campaign_id IS NULL) THEN
        UPDATE tracking_campaign SET config_version = config_version + 1;
    ELSIF TG_OP = 'INSERT' THEN
        UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id = NEW.campaign_id;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id = OLD.campaign_id;
    ELSE
        UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id IN (OLD.campaign_id, NEW.campaign_id);
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS tracking_config_version_tagginghours ON tracking_tagginghours;
CREATE TRIGGER tracking_config_version_tagginghours AFTER INSERT OR UPDATE OR DELETE ON tracking_tagginghours
    FOR EACH ROW EXECUTE FUNCTION tracking_config_version_tagginghours();

-- A handler: every campaign listing it. Its IVR keys and conversion rules hold only its id (the handler itself
-- is read per call there).
CREATE OR REPLACE FUNCTION tracking_config_version_handler() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1
     WHERE id IN (SELECT campaign_id FROM tracking_campaignhandler WHERE handler_id = NEW.id);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS tracking_config_version_handler ON tracking_handler;
CREATE TRIGGER tracking_config_version_handler AFTER UPDATE ON tracking_handler
    FOR EACH ROW EXECUTE FUNCTION tracking_config_version_handler();

-- A receiving number: every campaign listing a handler on it (its number, digits and ring timeout are dialled).
CREATE OR REPLACE FUNCTION tracking_config_version_receivingnumber() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1
     WHERE id IN (SELECT ch.campaign_id FROM tracking_campaignhandler ch JOIN tracking_handler h ON h.id = ch.handler_id
                  WHERE h.receiving_number_id = NEW.id);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS tracking_config_version_receivingnumber ON numbers_receivingnumber;
CREATE TRIGGER tracking_config_version_receivingnumber AFTER UPDATE ON numbers_receivingnumber
    FOR EACH ROW EXECUTE FUNCTION tracking_config_version_receivingnumber();
