-- schema written by dms-sqlhistorian 0.1 (create_tables before Alembic), SQLite
CREATE TABLE measurements (
	id INTEGER NOT NULL, 
	point TEXT NOT NULL, 
	value DOUBLE, 
	quality INTEGER NOT NULL, 
	source_time DOUBLE NOT NULL, 
	receive_time DOUBLE NOT NULL, 
	source TEXT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_measurements_point_source_time ON measurements (point, source_time);
CREATE TABLE alarms (
	id INTEGER NOT NULL, 
	alarm_id TEXT NOT NULL, 
	time DOUBLE NOT NULL, 
	priority INTEGER NOT NULL, 
	state TEXT NOT NULL, 
	category TEXT NOT NULL, 
	source TEXT NOT NULL, 
	point TEXT, 
	message TEXT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_alarms_time ON alarms (time);
CREATE TABLE audit (
	id INTEGER NOT NULL, 
	time DOUBLE NOT NULL, 
	actor TEXT NOT NULL, 
	action TEXT NOT NULL, 
	subject TEXT NOT NULL, 
	detail TEXT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_audit_time ON audit (time);
CREATE TABLE commands (
	id INTEGER NOT NULL, 
	command_id TEXT NOT NULL, 
	target TEXT NOT NULL, 
	value DOUBLE NOT NULL, 
	select_before_operate BOOLEAN NOT NULL, 
	originator TEXT NOT NULL, 
	reason TEXT NOT NULL, 
	timeout_s DOUBLE NOT NULL, 
	created DOUBLE NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_commands_command_id ON commands (command_id);
CREATE TABLE command_results (
	id INTEGER NOT NULL, 
	command_id TEXT NOT NULL, 
	status TEXT NOT NULL, 
	reason TEXT NOT NULL, 
	step TEXT NOT NULL, 
	finished DOUBLE NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_command_results_command_id ON command_results (command_id);
CREATE TABLE study_results (
	id INTEGER NOT NULL, 
	study TEXT NOT NULL, 
	solver TEXT NOT NULL, 
	converged BOOLEAN NOT NULL, 
	message TEXT NOT NULL, 
	started DOUBLE NOT NULL, 
	finished DOUBLE NOT NULL, 
	data TEXT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_study_results_study_finished ON study_results (study, finished);
CREATE TABLE control_actions (
	id INTEGER NOT NULL, 
	controller TEXT NOT NULL, 
	rationale TEXT NOT NULL, 
	command_id TEXT NOT NULL, 
	target TEXT NOT NULL, 
	value DOUBLE NOT NULL, 
	originator TEXT NOT NULL, 
	created DOUBLE NOT NULL, 
	PRIMARY KEY (id)
);
