module redilock.bench/goworker

go 1.24

require (
	github.com/go-redsync/redsync/v4 v4.18.1
	github.com/redilock/redilock/bindings/go v0.0.0-00010101000000-000000000000
	github.com/redis/go-redis/v9 v9.23.0
)

// bench/peers/install points this at the absolute path in its copy of the module.
replace github.com/redilock/redilock/bindings/go => ../../../../bindings/go
