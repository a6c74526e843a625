# frozen_string_literal: true

require_relative "lib/redilock/version"

# One gemspec for the two gems of a version, both built by `make gem` (mk/ruby.mk) from a
# staging copy of this directory that also holds the repository's LICENSE:
# - the plain gem (platform ruby), which loads libredilock from the system or $REDILOCK_LIB;
# - with REDILOCK_GEM_PLATFORM set (x86_64-linux, say), the platform gem, which also carries
#   the library staged in lib/redilock/native/PLATFORM/ (see lib/redilock/native_library.rb).
platform = ENV.fetch("REDILOCK_GEM_PLATFORM", "")
bundled = platform.empty? ? [] : Dir["lib/redilock/native/#{platform}/*"]
if !platform.empty? && bundled.empty?
  raise "no library staged in lib/redilock/native/#{platform}/: build the platform gem with `make gem`"
end
raise "LICENSE is missing here: build the gems with `make gem`, which stages it" unless File.file?("LICENSE")

Gem::Specification.new do |spec|
  spec.name = "redilock"
  spec.version = Redilock::VERSION
  spec.platform = platform unless platform.empty?
  spec.summary = "A distributed lock on Redis: Mutex#synchronize across processes and machines"
  spec.description = <<~TEXT
    Ruby binding of redilock, a Redis lock with owner tokens, TTLs, fencing numbers and a fair
    queue of waiters. It wraps the native libredilock (a Rust core with a C ABI) through the ffi
    gem. The platform gems (such as redilock-#{Redilock::VERSION}-x86_64-linux) carry libredilock inside;
    the plain gem loads it from the system (#{Redilock::LIBRARY_SONAME}) or from the path in REDILOCK_LIB.
  TEXT
  spec.license = "MIT"
  spec.authors = ["redilock contributors"]
  spec.homepage = "https://github.com/redilock/redilock"
  spec.metadata = {
    "homepage_uri" => spec.homepage,
    "source_code_uri" => "#{spec.homepage}/tree/main/bindings/ruby",
    "changelog_uri" => "#{spec.homepage}/blob/main/CHANGELOG.md",
    "bug_tracker_uri" => "#{spec.homepage}/issues",
    "documentation_uri" => "https://rubydoc.info/gems/redilock/#{Redilock::VERSION}",
    "rubygems_mfa_required" => "true"
  }
  spec.required_ruby_version = ">= 2.7"

  spec.files = Dir["lib/**/*.rb"] + bundled + %w[LICENSE README.md .yardopts]
  spec.require_paths = ["lib"]
  spec.extra_rdoc_files = ["README.md"]
  if bundled.empty?
    spec.requirements << "#{Redilock::LIBRARY_SONAME} (the Debian package, or " \
                         "`make install` from the redilock sources), or REDILOCK_LIB set to its path"
  end

  spec.add_dependency "ffi", "~> 1.15"
end
