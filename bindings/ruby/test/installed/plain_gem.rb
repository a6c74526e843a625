# frozen_string_literal: true

# `make test-ruby` runs this with the plain gem alone in a fresh GEM_HOME, from a directory
# outside the repository and without REDILOCK_LIB. With no libredilock anywhere,
# `require "redilock"` must raise Redilock::LibraryNotFound, saying what was tried and how to
# provide the library. Where a system libredilock is installed, REDILOCK_LIB names a missing
# file instead, the other way of finding none, and this says so.

abort "plain gem: run without REDILOCK_LIB" if ENV.key?("REDILOCK_LIB")

require "redilock/native_library"

system_library = begin
  Redilock::NativeLibrary.open.name
rescue Redilock::LibraryNotFound
  nil
end
expected = if system_library
             ENV["REDILOCK_LIB"] = File.join(Dir.pwd, "missing", Redilock::NativeLibrary::FILE)
             puts "plain gem: this system has #{system_library}; REDILOCK_LIB names a missing file instead"
             ["REDILOCK_LIB=#{ENV['REDILOCK_LIB']}: cannot open", "REDILOCK_LIB is set, so nothing else was tried"]
           else
             ["none bundled", "#{Redilock::LIBRARY_SONAME}: cannot open", "install the platform gem",
              "`make install`", "set REDILOCK_LIB"]
           end

begin
  require "redilock"
rescue Redilock::LibraryNotFound => e
  unsaid = expected.reject { |text| e.message.include?(text) }
  abort "plain gem: the message does not say #{unsaid.join(', ')}:\n#{e.message}" unless unsaid.empty?
  puts "plain gem: require \"redilock\" raised #{e.class}:", e.message.gsub(/^/, "  ")
else
  abort "plain gem: require \"redilock\" loaded #{Redilock.library_path}"
end
