-- The settings account of marina-controller (`mariadb.settings_group` in its configuration):
-- the only account Marina uses to read and change accounts (grant sync, the grant watch behind
-- grant drift) and to set global variables (variable sync). GRANT needs the grantor to hold every
-- privilege it grants, with GRANT OPTION, and most SET GLOBAL statements need SUPER, so this
-- account holds everything; that is why it is a separate account, configured only on
-- controllers that run syncs, and why the controller's own account (controller-grants.sql)
-- keeps no power over accounts. Give it one host pattern per controller host.
CREATE USER IF NOT EXISTS 'marina_settings'@'127.0.0.1' IDENTIFIED BY 'CHANGE-ME-THREE';
GRANT ALL PRIVILEGES ON *.* TO 'marina_settings'@'127.0.0.1' WITH GRANT OPTION;
