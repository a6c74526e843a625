# frozen_string_literal: true

require "open3"
require "rbconfig"
require_relative "test_helper"

# Where the native library comes from, and what a user reads when it is missing. The platform
# gem's own copy is checked from outside the repository by `make test-ruby`, on the installed gem.
class NativeLibraryTest < Minitest::Test
  LIB_DIR = File.expand_path("../lib", __dir__)
  MISSING = "/nonexistent/redilock/#{Redilock::NativeLibrary::FILE}".freeze

  def test_the_library_loaded_is_the_one_redilock_lib_names
    skip "REDILOCK_LIB is not set" unless ENV["REDILOCK_LIB"]
    assert_equal ENV["REDILOCK_LIB"], Redilock.library_path
  end

  # The gem is generated for one ABI (one minor version before 1.0): it passes over a library
  # of another, as the soname would.
  def test_a_library_of_another_abi_is_refused
    library = Redilock::NativeLibrary
    major = Redilock::Native::VERSION_MAJOR
    minor = Redilock::Native::VERSION_MINOR
    assert_includes library.incompatibility("#{major}.#{minor + 1}.0"),
                    "needs ABI #{Redilock::LIBRARY_ABI} (#{Redilock::LIBRARY_SONAME})"
    assert_nil library.incompatibility("#{major}.#{minor}.#{Redilock::Native::VERSION_PATCH + 1}")
  end

  # The soname the library records (build.rs) is the name the gem looks the system library up by.
  def test_the_library_records_the_soname_the_gem_looks_for
    skip "REDILOCK_LIB is not set" unless ENV["REDILOCK_LIB"]
    skip "no readelf" unless system("readelf --version", out: File::NULL, err: File::NULL)
    dynamic = IO.popen(["readelf", "-d", ENV["REDILOCK_LIB"]], &:read)
    assert_includes dynamic, "Library soname: [#{Redilock::LIBRARY_SONAME}]"
  end

  def test_without_redilock_lib_the_message_says_what_was_tried_and_how_to_provide_the_library
    library = Redilock::NativeLibrary
    error = without_redilock_lib do
      library.stub(:candidates, [MISSING, "libredilock-missing.so"]) do
        assert_raises(Redilock::LibraryNotFound) { library.open }
      end
    end
    assert_kind_of LoadError, error
    assert_equal [MISSING, "libredilock-missing.so"], error.refusals.keys
    assert_includes error.message, "#{MISSING}: cannot open shared object file"
    assert_includes error.message, "#{library::BUNDLED_DIR}/#{Gem::Platform.local}/#{library::FILE}: none bundled"
    assert_includes error.message, "install the platform gem redilock-#{Redilock::VERSION}-#{Gem::Platform.local}"
    assert_includes error.message, "`make install`"
    assert_includes error.message, "set REDILOCK_LIB"
  end

  # REDILOCK_LIB is a choice: when it names no usable library, nothing else is loaded in its
  # place, and `require "redilock"` raises the gem's error rather than ffi's.
  def test_require_with_a_redilock_lib_that_is_missing_raises_library_not_found
    output, status = Open3.capture2e({ "REDILOCK_LIB" => MISSING }, RbConfig.ruby, "-I", LIB_DIR, "-e", <<~RUBY)
      begin
        require "redilock"
      rescue Redilock::LibraryNotFound => e
        puts e.message
        exit 3
      end
    RUBY
    assert_equal 3, status.exitstatus, output
    assert_includes output, "REDILOCK_LIB=#{MISSING}: cannot open shared object file"
    assert_includes output, "REDILOCK_LIB is set, so nothing else was tried"
  end

  private

  def without_redilock_lib
    saved = ENV.delete("REDILOCK_LIB")
    yield
  ensure
    ENV["REDILOCK_LIB"] = saved if saved
  end
end
