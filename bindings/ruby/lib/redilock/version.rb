# frozen_string_literal: true

module Redilock
  # The gem's version; a test keeps it equal to the native library's.
  VERSION = "0.2.0"
end
