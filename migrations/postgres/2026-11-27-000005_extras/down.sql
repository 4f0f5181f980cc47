DROP TABLE extras;
