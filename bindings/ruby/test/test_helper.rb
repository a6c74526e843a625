# frozen_string_literal: true

require "minitest/autorun"
require "securerandom"
require "redilock"

# Shared by the suites: every test talks to the throwaway redis-server the harness started
# (tests/harness/with-redis exports REDIS_URL) under names no other test uses.
module RedilockTestHelper
  def setup
    @url = ENV.fetch("REDIS_URL") { skip "REDIS_URL is not set: run through tests/harness/with-redis" }
    @clients = []
  end

  def teardown
    @clients.each(&:close)
  end

  def new_client(url = @url, ttl: 10, **options)
    Redilock::Client.new(url, ttl: ttl, **options).tap { |client| @clients << client }
  end

  def unique_name(label = "lock")
    "test:#{label}:#{SecureRandom.hex(6)}"
  end

  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # The reply of a command sent to the test server by redis-cli, behind the library's back.
  def redis_cli(*args)
    IO.popen(["redis-cli", "-u", @url, *args], &:read).strip
  end

  # How many scripts (the library's lock, unlock, extend and TTL calls) the server ran while
  # the block ran.
  def scripts_run_during
    redis_cli("CONFIG", "RESETSTAT")
    yield
    redis_cli("INFO", "commandstats").scan(/^cmdstat_(?:eval|evalsha):calls=(\d+)/).flatten.sum(&:to_i)
  end

  # Waits up to `seconds` for the block to become truthy; returns its last value.
  def eventually(seconds = 3)
    deadline = monotonic + seconds
    until (value = yield) || monotonic > deadline
      sleep 0.01
    end
    value
  end
end
