DROP TABLE canned_answers;
DROP INDEX ticket_activity_last;
DROP INDEX ticket_activity_waiting_on;
DROP TABLE ticket_activity;
