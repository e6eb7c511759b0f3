DROP TRIGGER IF EXISTS tickets_kind_known_insert;
DROP TRIGGER IF EXISTS tickets_kind_known_update;
DROP TRIGGER IF EXISTS tickets_state_known_insert;
DROP TRIGGER IF EXISTS tickets_state_known_update;
DROP TRIGGER IF EXISTS tickets_channel_known_insert;
DROP TRIGGER IF EXISTS tickets_channel_known_update;
DROP TRIGGER IF EXISTS events_event_type_known_insert;
