ALTER TABLE tickets DROP CONSTRAINT IF EXISTS tickets_kind_known;
ALTER TABLE tickets DROP CONSTRAINT IF EXISTS tickets_state_known;
ALTER TABLE tickets DROP CONSTRAINT IF EXISTS tickets_channel_known;
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_event_type_known;
