# frozen_string_literal: true

require_relative "constants"

module Redilock
  # The gem's version: the version of include/redilock.h it was generated from (so the
  # gemspec needs no ffi), which a test keeps equal to the native library's.
  VERSION = [Native::VERSION_MAJOR, Native::VERSION_MINOR, Native::VERSION_PATCH].join(".").freeze
end
