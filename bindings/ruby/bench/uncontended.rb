# frozen_string_literal: true

# Benchmark worker for the Ruby binding, driven by `make bench` like bench/c_bench.c:
#
#   ruby bench/uncontended.rb uncontended URL SECONDS
#       try_lock + unlock one name in a loop; prints "cycles_per_sec <float>".

require "redilock"

mode, url, seconds = ARGV
unless mode == "uncontended" && url && seconds
  warn "usage: #{$PROGRAM_NAME} uncontended URL SECONDS"
  exit 2
end

client = Redilock::Client.new(url, ttl: 10)
name = "bench:uncontended:#{Process.pid}"
started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
deadline = started + Float(seconds)
cycles = 0
now = started
while now < deadline
  lock = client.try_lock(name) or abort("bench-ruby: lock: #{name} is held")
  lock.unlock
  cycles += 1
  now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
end
puts format("cycles_per_sec %.1f", cycles / (now - started))
client.close
