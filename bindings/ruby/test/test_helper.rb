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
end
