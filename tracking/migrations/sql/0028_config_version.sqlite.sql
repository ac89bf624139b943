-- tracking_campaign.config_version on SQLite: the same bumps as config_version.postgresql.sql (read its header).
-- SQLite has no trigger functions and no FOR EACH STATEMENT: one trigger per table and operation. Statements are
-- separated by blank lines; installing drops each trigger first (tracking.db_triggers), so installing again
-- replaces them. A migration that rebuilds one of these tables (SQLite's AlterField, AddField with a default)
-- drops its triggers: install this file again after it (tests/tracking/test_config_version.py checks they exist).

-- The campaign's own columns, except rr_position (the hot path's) and config_version: the stored version plus
-- one, whatever the statement wrote. The trigger's own UPDATE names config_version only, so it does not fire again.
CREATE TRIGGER tracking_config_version_campaign
    AFTER UPDATE OF name, campaign_id, enabled, routing_strategy, nearest_fallback, route_to_destination, sticky_routing,
        greeting_kind, greeting_text, greeting_voice, greeting_language, greeting_url, ivr_prompt, ivr_timeout, ivr_repeat,
        ivr_default_digit, record_calls, no_answer_message, failsafe_number, company_phone, fallback_credit, queue_enabled,
        queue_max_wait, queue_hold_music_url, queue_message, spam_action, spam_threshold, spam_rules, created_at, updated_at
    ON tracking_campaign FOR EACH ROW
BEGIN
    UPDATE tracking_campaign SET config_version = OLD.config_version + 1 WHERE id = NEW.id;
END;

-- A row of a campaign (its handler list, menus, keys, rules, webhooks, lookup tables): its campaign, before and after a move.
CREATE TRIGGER tracking_config_version_campaignhandler_insert AFTER INSERT ON tracking_campaignhandler FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id = NEW.campaign_id;
END;

CREATE TRIGGER tracking_config_version_campaignhandler_update AFTER UPDATE ON tracking_campaignhandler FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id IN (OLD.campaign_id, NEW.campaign_id);
END;

CREATE TRIGGER tracking_config_version_campaignhandler_delete AFTER DELETE ON tracking_campaignhandler FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id = OLD.campaign_id;
END;

CREATE TRIGGER tracking_config_version_ivrmenu_insert AFTER INSERT ON tracking_ivrmenu FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id = NEW.campaign_id;
END;

CREATE TRIGGER tracking_config_version_ivrmenu_update AFTER UPDATE ON tracking_ivrmenu FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id IN (OLD.campaign_id, NEW.campaign_id);
END;

CREATE TRIGGER tracking_config_version_ivrmenu_delete AFTER DELETE ON tracking_ivrmenu FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id = OLD.campaign_id;
END;

CREATE TRIGGER tracking_config_version_ivroption_insert AFTER INSERT ON tracking_ivroption FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id = NEW.campaign_id;
END;

CREATE TRIGGER tracking_config_version_ivroption_update AFTER UPDATE ON tracking_ivroption FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id IN (OLD.campaign_id, NEW.campaign_id);
END;

CREATE TRIGGER tracking_config_version_ivroption_delete AFTER DELETE ON tracking_ivroption FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id = OLD.campaign_id;
END;

CREATE TRIGGER tracking_config_version_conversionrule_insert AFTER INSERT ON tracking_conversionrule FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id = NEW.campaign_id;
END;

CREATE TRIGGER tracking_config_version_conversionrule_update AFTER UPDATE ON tracking_conversionrule FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id IN (OLD.campaign_id, NEW.campaign_id);
END;

CREATE TRIGGER tracking_config_version_conversionrule_delete AFTER DELETE ON tracking_conversionrule FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id = OLD.campaign_id;
END;

CREATE TRIGGER tracking_config_version_webhook_insert AFTER INSERT ON tracking_webhook FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id = NEW.campaign_id;
END;

CREATE TRIGGER tracking_config_version_webhook_update AFTER UPDATE ON tracking_webhook FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id IN (OLD.campaign_id, NEW.campaign_id);
END;

CREATE TRIGGER tracking_config_version_webhook_delete AFTER DELETE ON tracking_webhook FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id = OLD.campaign_id;
END;

CREATE TRIGGER tracking_config_version_routingtable_insert AFTER INSERT ON tracking_routingtable FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id = NEW.campaign_id;
END;

CREATE TRIGGER tracking_config_version_routingtable_update AFTER UPDATE ON tracking_routingtable FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id IN (OLD.campaign_id, NEW.campaign_id);
END;

CREATE TRIGGER tracking_config_version_routingtable_delete AFTER DELETE ON tracking_routingtable FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id = OLD.campaign_id;
END;

-- Tagging hours: a schedule without a campaign tags every campaign's calls.
CREATE TRIGGER tracking_config_version_tagginghours_insert AFTER INSERT ON tracking_tagginghours FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id = NEW.campaign_id OR NEW.campaign_id IS NULL;
END;

CREATE TRIGGER tracking_config_version_tagginghours_update AFTER UPDATE ON tracking_tagginghours FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id IN (OLD.campaign_id, NEW.campaign_id) OR OLD.campaign_id IS NULL OR NEW.campaign_id IS NULL;
END;

CREATE TRIGGER tracking_config_version_tagginghours_delete AFTER DELETE ON tracking_tagginghours FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1 WHERE id = OLD.campaign_id OR OLD.campaign_id IS NULL;
END;

-- A handler: every campaign listing it (its IVR keys and conversion rules hold only its id).
CREATE TRIGGER tracking_config_version_handler AFTER UPDATE ON tracking_handler FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1
     WHERE id IN (SELECT campaign_id FROM tracking_campaignhandler WHERE handler_id = NEW.id);
END;

-- A receiving number: every campaign listing a handler on it.
CREATE TRIGGER tracking_config_version_receivingnumber AFTER UPDATE ON numbers_receivingnumber FOR EACH ROW BEGIN
    UPDATE tracking_campaign SET config_version = config_version + 1
     WHERE id IN (SELECT ch.campaign_id FROM tracking_campaignhandler ch JOIN tracking_handler h ON h.id = ch.handler_id
                  WHERE h.receiving_number_id = NEW.id);
END;
