/*
 * schema.h - the numbered migrations of schema/, embedded at build time by
 * CMake (gen/schema.c).  Migration N brings the database to user_version N.
 */
#ifndef DISTILL_SCHEMA_H
#define DISTILL_SCHEMA_H

struct schema_migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct schema_migration schema_migrations[];
extern const int schema_migration_count;

#endif
