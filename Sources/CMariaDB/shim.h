#ifndef MARINA_CMARIADB_SHIM_H
#define MARINA_CMARIADB_SHIM_H

#include <stddef.h>
#include <mysql.h>
#include <errmsg.h>
#include <mysqld_error.h>

/// `mysql_library_init` is a macro; Swift calls this instead.
static inline int marina_mysql_library_init(void) {
    return mysql_server_init(0, NULL, NULL);
}

/// `mysql_options` takes `const void *`; these typed wrappers keep the option's real type visible.
static inline int marina_mysql_option_uint(MYSQL *mysql, enum mysql_option option, unsigned int value) {
    return mysql_options(mysql, option, &value);
}

static inline int marina_mysql_option_bool(MYSQL *mysql, enum mysql_option option, my_bool value) {
    return mysql_options(mysql, option, &value);
}

static inline int marina_mysql_option_string(MYSQL *mysql, enum mysql_option option, const char *value) {
    return mysql_options(mysql, option, value);
}

#endif
