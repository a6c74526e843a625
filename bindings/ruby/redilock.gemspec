# frozen_string_literal: true

require_relative "lib/redilock/version"

Gem::Specification.new do |spec|
  spec.name = "redilock"
  spec.version = Redilock::VERSION
  spec.summary = "A distributed lock on Redis: Mutex#synchronize across processes and machines"
  spec.description = <<~TEXT
    Ruby binding of redilock, a Redis lock with owner tokens, TTLs, fencing numbers and a fair queue of waiters.
    It wraps the native libredilock (a Rust core with a C ABI) through the ffi gem.
  TEXT
  spec.license = "MIT"
  spec.authors = ["redilock contributors"]
  spec.required_ruby_version = ">= 2.7"

  spec.files = Dir["lib/**/*.rb", "vendor/*", "README.md"]
  spec.require_paths = ["lib"]
  spec.requirements << "libredilock (build it with `make lib`, or set REDILOCK_LIB)"

  spec.add_dependency "ffi", "~> 1.15"
end
