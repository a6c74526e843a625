# frozen_string_literal: true

require "ffi"
require_relative "errors"
require_relative "version"

module Redilock
  # Finds libredilock, the native library the gem runs on. Candidates, in order; the first that
  # opens and has the ABI this gem was generated for wins:
  #
  # 1. `ENV["REDILOCK_LIB"]` when set, and then nothing else: a library chosen by hand is never
  #    replaced by another behind the user's back;
  # 2. the library a platform gem carries, in `lib/redilock/native/PLATFORM/` (the plain gem
  #    carries none);
  # 3. the system library by the soname of this gem's ABI, LIBRARY_SONAME (the Debian package,
  #    `make install`);
  # 4. `libredilock.so`, the unversioned link of a development install.
  #
  # @api private
  module NativeLibrary
    # The library's file name without a version (libredilock.so on Linux).
    FILE = FFI.map_library_name("redilock")

    # Where a platform gem carries its library: a directory named after the gem's platform.
    BUNDLED_DIR = File.expand_path("native", __dir__)

    # @return [Array<String>] what to try, in order: paths, or names the system's dynamic
    #   linker looks up
    def self.candidates
      override = ENV.fetch("REDILOCK_LIB", "")
      return [override] unless override.empty?

      [*bundled, LIBRARY_SONAME, FILE]
    end

    # A platform gem holds one platform's library; the platform check keeps a tree that holds
    # several (or one that was copied across) from loading another machine's.
    #
    # @return [Array<String>] the bundled library for this host's platform, if any
    def self.bundled
      Dir[File.join(BUNDLED_DIR, "*", FILE)].select do |path|
        Gem::Platform.new(File.basename(File.dirname(path))) === Gem::Platform.local
      end
    end

    # Opens the first usable candidate.
    #
    # @return [FFI::DynamicLibrary] the library; its #name is the candidate that won
    # @raise [LibraryNotFound] when no candidate is usable; its message says what was tried
    #   and how to provide the library
    def self.open
      refusals = {}
      candidates.each do |candidate|
        library, refusal = open_candidate(candidate)
        return library unless refusal

        refusals[candidate] = refusal
      end
      raise LibraryNotFound.new(not_found_message(refusals), refusals)
    end

    # @param version [String] what a library's `redilock_version()` returns
    # @return [String, nil] why a library of that version cannot serve this gem; nil if it can
    def self.incompatibility(version)
      major, minor = version.split(".").map { |part| Integer(part, exception: false) }
      return if major == Native::VERSION_MAJOR && (major.positive? || minor == Native::VERSION_MINOR)

      "libredilock #{version} is of another ABI; this gem needs ABI #{LIBRARY_ABI} (#{LIBRARY_SONAME})"
    end

    # @return [Array(FFI::DynamicLibrary, nil), Array(nil, String)] the library, or why not
    def self.open_candidate(candidate)
      library = FFI::DynamicLibrary.open(candidate, FFI::DynamicLibrary::RTLD_LAZY | FFI::DynamicLibrary::RTLD_LOCAL)
      version = library.find_function("redilock_version")
      return [nil, "not libredilock: it has no redilock_version"] unless version

      refusal = incompatibility(FFI::Function.new(:string, [], version).call)
      refusal ? [nil, refusal] : [library, nil]
    rescue LoadError => e
      # ffi says "Could not open library 'X': X: <the dynamic linker's reason>"; keep the reason.
      [nil, e.message.split("#{candidate}: ", 2).last]
    end
    private_class_method :open_candidate

    def self.not_found_message(refusals)
      override = !ENV.fetch("REDILOCK_LIB", "").empty?
      platform = Gem::Platform.local
      tried = refusals.map { |candidate, refusal| "  #{'REDILOCK_LIB=' if override}#{candidate}: #{refusal}" }
      fixes = if override
                ["REDILOCK_LIB is set, so nothing else was tried: point it at a #{FILE} of ABI " \
                 "#{LIBRARY_ABI}, or unset it to use the library of the platform gem or of the system"]
              else
                ["install libredilock (ABI #{LIBRARY_ABI}) on the system (the Debian package, or " \
                 "`make install` from the redilock sources), which provides #{LIBRARY_SONAME}",
                 "set REDILOCK_LIB to the path of a #{FILE} of ABI #{LIBRARY_ABI} " \
                 "(target/release/#{FILE} after `make lib` in the redilock sources)"]
              end
      if !override && bundled.empty?
        tried.unshift("  #{BUNDLED_DIR}/#{platform}/#{FILE}: none bundled (the plain gem and the source tree " \
                      "carry none; the platform gem does)")
        fixes.unshift("install the platform gem redilock-#{VERSION}-#{platform}, which carries the library, " \
                      "if one is published for this platform (Bundler: `bundle lock --add-platform #{platform}`)")
      end
      ["redilock #{VERSION} found no usable libredilock (the native library of ABI #{LIBRARY_ABI}). " \
       "Tried, in order:", *tried, "To fix it:", *fixes.map { |fix| "  - #{fix}" }].join("\n")
    end
    private_class_method :not_found_message
  end
end
