# frozen_string_literal: true

require "open3"
require "rbconfig"
require "tmpdir"
require_relative "test_helper"

# Every ```ruby block of README.md runs as it is, the way a reader pastes it: in a Ruby process
# of its own (with warnings on), against the test Redis, from an empty directory. REDIS_MASTERS
# lists the servers of with-redis -n for the quorum example.
class ReadmeTest < Minitest::Test
  include RedilockTestHelper

  README = File.expand_path("../README.md", __dir__)
  LIB_DIR = File.expand_path("../lib", __dir__)
  # An example that takes longer than this is stuck (waiting on a lock an earlier line kept).
  EXAMPLE_SECONDS = 30

  # @return [Hash{Integer => String}] the code of each ```ruby block, by the line it starts on
  def self.examples
    examples = {}
    start = nil
    File.readlines(README).each_with_index do |line, index|
      if start.nil? && line.chomp == "```ruby"
        start = index + 2
        examples[start] = +""
      elsif start && line.chomp == "```"
        start = nil
      elsif start
        examples[start] << line
      end
    end
    examples
  end

  examples.each do |line, code|
    define_method("test_the_example_at_readme_line_#{line}_runs") { assert_runs(code, line) }
  end

  def test_the_readme_has_examples
    refute_empty self.class.examples
  end

  private

  # REDIS_URL_1, REDIS_URL_2, ... as far as they are set, space-separated; nil when none is.
  def masters
    urls = (1..).lazy.map { |k| ENV.fetch("REDIS_URL_#{k}", nil) }.take_while(&:itself).to_a
    urls.join(" ") unless urls.empty?
  end

  def assert_runs(code, line)
    output, status = Dir.mktmpdir do |dir|
      Open3.popen2e({ "REDIS_URL" => @url, "REDIS_MASTERS" => masters }, RbConfig.ruby, "-w", "-I", LIB_DIR, "-", chdir: dir) do |input, out, wait|
        input.write(code)
        input.close
        reader = Thread.new { out.read }
        Process.kill(:KILL, wait.pid) unless wait.join(scaled(EXAMPLE_SECONDS))
        [reader.value, wait.value]
      end
    end
    assert status.success?, "the example at README.md:#{line} failed (#{status}); lines count from there:\n#{output}"
    refute_match(/warning:/, output, "the example at README.md:#{line} warns")
  end
end
