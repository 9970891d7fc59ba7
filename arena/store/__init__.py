"""The match store: every table (`schema`), the domain records read from it (`records`), the SQL
store itself (`matches`) and the ratings kept beside it (`ratings`)."""
