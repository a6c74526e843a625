# frozen_string_literal: true

# The redilock demo: several processes update one shared file, which must always be found in
# its valid state. Each update is a read, a deliberately slow two-step write, and a check;
# with the lock no process ever sees a half-written file or loses an update. The file also
# checks fencing: each write carries the lock's fencing number, and a number not above the last
# one accepted is refused as a stale write. Then the same run without the lock (and so without
# fences) shows the errors the lock prevents.
#
#   REDIS_URL=redis://127.0.0.1:6379 ruby -I bindings/ruby/lib examples/ruby/demo.rb [processes] [iterations]

require "redilock"
require "tempfile"

LOCK_NAME = "redilock-demo:ledger"
LOCK_TTL = 10

def monotonic_ms
  Process.clock_gettime(Process::CLOCK_MONOTONIC, :float_millisecond)
end

# The ledger file holds "<count> <count * 7> <fence of the last accepted write>"; anything else
# is a torn (invalid) state.
# @return [Array(Integer, Integer), nil] the count and the fence, or nil when the file is torn
def read_ledger(path)
  count, check, fence = File.read(path).split.map { |field| Integer(field, exception: false) }
  [count, fence] if count && check == count * 7 && fence
end

# One update carrying `fence` (0: none, not checked): read, refuse a stale fence (each hold
# writes once, so its fence must be above the last one accepted), write a half-done state,
# pause, write the new valid state.
# @return [Symbol] :updated, :torn_read or :stale_write
def update_ledger(path, fence)
  count, last_fence = read_ledger(path)
  return :stale_write if fence.positive? && fence <= last_fence.to_i

  next_count = count.to_i + 1
  File.write(path, next_count.to_s) # torn: the check number and fence are missing
  sleep 0.0002
  File.write(path, "#{next_count} #{next_count * 7} #{fence}")
  count ? :updated : :torn_read
end

# Runs in a child process; creates its own client there (a client does not survive fork).
# @return [Array(Integer, Integer, Array<Float>)] the errors seen (torn reads and failed lock
#   calls), the stale writes, and the lock wait of each update
def work(id, iterations, use_lock, path)
  client = Redilock::Client.new(ENV.fetch("REDIS_URL"), ttl: LOCK_TTL) if use_lock
  outcomes = Hash.new(0)
  waits_ms = []
  iterations.times do |i|
    asked = monotonic_ms
    if use_lock
      client.synchronize(LOCK_NAME) do |lock|
        waits_ms << monotonic_ms - asked
        outcomes[update_ledger(path, lock.fence)] += 1
      end
    else
      waits_ms << monotonic_ms - asked
      outcomes[update_ledger(path, 0)] += 1
    end
  rescue Redilock::Error => e
    warn "worker #{id}: #{e.class}: #{e.message}"
    outcomes[:failed] += 1
  ensure
    puts "  worker #{id}: #{i + 1}/#{iterations} updates" if (i + 1) * 4 / iterations != i * 4 / iterations
  end
  client&.close
  [outcomes[:torn_read] + outcomes[:failed], outcomes[:stale_write], waits_ms]
end

# Runs the workers as separate processes.
# @return [Integer] the number of errors seen
def run(processes, iterations, use_lock)
  ledger = Tempfile.new("redilock-demo-ledger")
  File.write(ledger.path, "0 0 0")
  puts "#{use_lock ? 'with the lock' : 'WITHOUT the lock'}: #{processes} processes x #{iterations} updates of one file"
  started = monotonic_ms
  workers = Array.new(processes) do |id|
    reader, writer = IO.pipe
    pid = Process.fork do
      reader.close
      writer.write(Marshal.dump(work(id, iterations, use_lock, ledger.path)))
      exit!(0) # skip at_exit hooks inherited from the parent (the Tempfile's cleanup)
    end
    writer.close
    [pid, reader]
  end
  reports = workers.map do |pid, reader|
    report = reader.read
    Process.wait(pid)
    $?.success? && !report.empty? ? Marshal.load(report) : nil # nil: the worker died, counted below
  end
  elapsed_s = (monotonic_ms - started) / 1000

  total = processes * iterations
  failed_workers = reports.count(&:nil?)
  torn_reads = reports.compact.sum(&:first)
  stale_writes = reports.compact.sum { |_torn_reads, stale, _waits| stale }
  final_count, last_fence = read_ledger(ledger.path)
  lost = [total - stale_writes - final_count.to_i, 0].max # a refused stale write is not lost
  errors = torn_reads + stale_writes + (final_count ? 0 : 1) + lost + failed_workers
  waits = reports.compact.flat_map(&:last).sort
  summary = format("  summary: %d x %d = %d updates, errors: %d (torn reads %d, lost updates %d",
                   processes, iterations, total, errors, torn_reads, lost)
  summary += ", stale writes #{stale_writes}" if use_lock
  summary += format("), %.0f updates/s", total / elapsed_s)
  if use_lock && !waits.empty?
    summary += format(", lock wait p50 %.2f ms, p99 %.2f ms, last fence %d",
                      waits[waits.size / 2], waits[waits.size * 99 / 100], last_fence.to_i)
  end
  puts summary, ""
  errors
ensure
  ledger&.close!
end

processes = Integer(ARGV.fetch(0, 4), exception: false)
iterations = Integer(ARGV.fetch(1, 250), exception: false)
unless ENV["REDIS_URL"] && processes&.positive? && iterations&.positive?
  warn "usage: REDIS_URL=redis://host:port #{$PROGRAM_NAME} [processes] [iterations]"
  exit 2
end
$stdout.sync = true
puts "redilock #{Redilock.library_version} demo against #{ENV['REDIS_URL']}", ""
with_lock = run(processes, iterations, true)
without_lock = run(processes, iterations, false)
puts "result: #{with_lock} errors with the lock, #{without_lock} without it"
exit(with_lock.zero? ? 0 : 1)
