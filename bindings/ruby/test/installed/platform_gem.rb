# frozen_string_literal: true

# `make test-ruby` runs this with the platform gem installed into a fresh GEM_HOME, from a
# directory outside the repository and without REDILOCK_LIB: the gem's code and the library it
# carries must be the ones loaded, and must lock against the test Redis (REDIS_URL, from
# tests/harness/with-redis).

abort "platform gem: run without REDILOCK_LIB" if ENV.key?("REDILOCK_LIB")

require "redilock"

spec = Gem.loaded_specs.fetch("redilock") { abort "platform gem: redilock was not activated as a gem" }
installed = File.join(File.expand_path(ENV.fetch("GEM_HOME")), "gems", spec.full_name)
code = $LOADED_FEATURES.find { |feature| feature.end_with?("/redilock.rb") }
abort "platform gem: the code loaded is #{code}, not the gem's in #{installed}" unless code.start_with?("#{installed}/")

bundled = File.join(installed, "lib", "redilock", "native", spec.platform.to_s, Redilock::NativeLibrary::FILE)
unless Redilock.library_path == bundled
  abort "platform gem: the library loaded is #{Redilock.library_path}, not the gem's #{bundled}"
end

client = Redilock::Client.new(ENV.fetch("REDIS_URL"), ttl: 10)
name = "installed-gem:#{Process.pid}"
lock = client.lock(name, timeout: 5)
taken_twice = !client.try_lock(name).nil?
lock.unlock
client.close
abort "platform gem: try_lock took #{name} while it was held" if taken_twice

puts "platform gem: #{spec.full_name} locked and unlocked #{name} with #{Redilock.library_path}"
