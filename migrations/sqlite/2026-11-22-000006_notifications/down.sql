DROP TABLE push_subscriptions;
DROP TABLE messages;
