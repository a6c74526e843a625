# frozen_string_literal: true

require_relative "redilock/version"
require_relative "redilock/errors"
require_relative "redilock/native"
require_relative "redilock/lock"
require_relative "redilock/client"

# A distributed lock on Redis: Ruby's `Mutex#synchronize` across processes and machines.
#
# @example
#   client = Redilock::Client.new("redis://127.0.0.1:6379", ttl: 30)
#   client.synchronize("orders:42", timeout: 2) { ship(order) }
module Redilock
  # @return [String] the version of the native library loaded ("MAJOR.MINOR.PATCH")
  def self.library_version
    Native.redilock_version
  end

  # Which libredilock was loaded (see the README for the order the candidates are tried in).
  #
  # @return [String] the path of the library, or its name (`libredilock.so.0.2`) when the
  #   system's dynamic linker found it
  def self.library_path
    Native::LIBRARY.name
  end
end
