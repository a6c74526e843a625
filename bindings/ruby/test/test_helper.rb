# frozen_string_literal: true

require "minitest/autorun"
require "securerandom"
require "socket"
require "uri"
require "redilock"

# Shared by the suites: every test talks to the throwaway redis-server the harness started
# (tests/harness/with-redis exports REDIS_URL) under names no other test uses.
#
# The suites must pass on a loaded two-core machine: tests wait for what they can observe
# (a waiter's place in the lock's queue in Redis, a key gone, a thread ended) instead of
# sleeping, and every time bound goes through #scaled.
module RedilockTestHelper
  TIME_SCALE = Float(ENV.fetch("REDILOCK_TEST_TIME_SCALE", "1"))

  def setup
    @url = ENV.fetch("REDIS_URL") { skip "REDIS_URL is not set: run through tests/harness/with-redis" }
    @clients = []
  end

  def teardown
    @clients.each(&:close)
    @redis&.close
  end

  # A client closed after the test. Its timeouts (the library's defaults) are scaled too.
  def new_client(url = @url, ttl: scaled(10), connect_timeout: scaled(2), command_timeout: scaled(2), **options)
    timeouts = { connect_timeout: connect_timeout, command_timeout: command_timeout }
    Redilock::Client.new(url, ttl: ttl, **timeouts, **options).tap { |client| @clients << client }
  end

  def unique_name(label = "lock")
    "test:#{label}:#{SecureRandom.hex(6)}"
  end

  # A time bound in seconds, multiplied by REDILOCK_TEST_TIME_SCALE (default 1) for slow or
  # loaded machines.
  def scaled(seconds)
    seconds * TIME_SCALE
  end

  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # Waits up to `seconds` (scaled) for the block to become truthy; returns its last value.
  def eventually(seconds = 3)
    deadline = monotonic + scaled(seconds)
    until (value = yield) || monotonic > deadline
      sleep 0.01
    end
    value
  end

  # The reply of a command sent to the test server behind the library's back, over a
  # connection of the test's own: Integer, String, nil or Array; an error reply raises.
  def redis(*args)
    @redis ||= open_redis
    command(@redis, *args)
  end

  # The reply of one command sent to the loopback server on `port` (a cluster node, a quorum
  # client's master), over a connection of its own.
  def redis_at(port, *args)
    socket = TCPSocket.new("127.0.0.1", Integer(port))
    command(socket, *args)
  ensure
    socket&.close
  end

  # The tokens waiting in the queue of lock `name`, first in line first. An entry is the
  # token immediately followed by the TTL asked for in milliseconds ("<32 hex chars>30000").
  def queue(name)
    pattern = "redilock:queue:*:#{name.gsub(/[*?\[\]\\]/) { |c| "\\#{c}" }}"
    keys = []
    cursor = "0"
    loop do
      cursor, found = redis("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
      keys.concat(found)
      break if cursor == "0"
    end
    keys.flat_map { |key| redis("LRANGE", key, 0, -1) }.map { |entry| entry[0, Redilock::Native::TOKEN_LEN - 1] }
  end

  # Waits until `count` waiters are in the queue of lock `name`.
  def await_queue(name, count)
    assert eventually { queue(name).size == count }, "#{count} waiter(s) in the queue of #{name}"
  end

  def await_expiry(name)
    assert eventually { redis("EXISTS", name).zero? }, "#{name} expired"
  end

  # How many scripts (the library's lock, unlock, extend and remaining TTL calls) the server
  # ran while the block ran.
  def scripts_run_during
    redis("CONFIG", "RESETSTAT")
    yield
    redis("INFO", "commandstats").scan(/^cmdstat_(?:eval|evalsha):calls=(\d+)/).flatten.sum(&:to_i)
  end

  private

  def open_redis
    uri = URI(@url)
    socket = TCPSocket.new(uri.host, uri.port)
    db = uri.path.delete_prefix("/")
    command(socket, "SELECT", db) unless db.empty?
    socket
  end

  def command(socket, *args)
    socket.write("*#{args.size}\r\n", *args.map { |arg| "$#{arg.to_s.bytesize}\r\n#{arg}\r\n" })
    read_reply(socket)
  end

  def read_reply(socket)
    line = socket.gets("\r\n").chomp("\r\n")
    payload = line[1..]
    case line[0]
    when "+" then payload
    when "-" then raise "redis: #{payload}"
    when ":" then Integer(payload)
    when "$" then payload == "-1" ? nil : socket.read(Integer(payload) + 2)[0...-2]
    when "*" then payload == "-1" ? nil : Array.new(Integer(payload)) { read_reply(socket) }
    else raise "redis: unexpected reply #{line.inspect}"
    end
  end
end
