# frozen_string_literal: true

require_relative "constants"

module Redilock
  # The gem's version: the version of include/redilock.h it was generated from (so the
  # gemspec needs no ffi), which a test keeps equal to the native library's.
  VERSION = [Native::VERSION_MAJOR, Native::VERSION_MINOR, Native::VERSION_PATCH].join(".").freeze

  # The ABI of libredilock this gem was generated for: each minor version has its own before
  # 1.0, each major version after. A library of another ABI is not loaded.
  LIBRARY_ABI = (Native::VERSION_MAJOR.zero? ? "0.#{Native::VERSION_MINOR}" : Native::VERSION_MAJOR.to_s).freeze

  # The library's file for that ABI, as the system installs it (its soname).
  LIBRARY_SONAME = "libredilock.so.#{LIBRARY_ABI}"
end
