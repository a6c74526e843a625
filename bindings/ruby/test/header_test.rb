# frozen_string_literal: true

require "tmpdir"
require_relative "test_helper"

# The Ruby side of the C ABI agrees with include/redilock.h, the source of truth.
class HeaderTest < Minitest::Test
  HEADER_DIR = File.expand_path("../../../include", __dir__)
  HEADER = File.join(HEADER_DIR, "redilock.h")

  def setup
    skip "no redilock.h beside the gem" unless File.file?(HEADER)
  end

  # Every number the header defines (but the version, which the library reports at run time)
  # is in Redilock::Native under the same name, with the same value; and Native has no status
  # the header lacks.
  def test_constants_match_the_header
    defined = File.read(HEADER).scan(/^#define REDILOCK_(\w+) (-?\d+)$/).to_h { |name, value| [name, Integer(value)] }
    expected = defined.reject { |name, _| name.start_with?("VERSION_") }
    assert_includes expected.keys, "STATUS_CLOSED", "the header was parsed"
    mirrored = expected.keys.to_h do |name|
      [name, Redilock::Native.const_defined?(name, false) ? Redilock::Native.const_get(name) : :missing]
    end
    assert_equal expected, mirrored
    assert_empty Redilock::Native.constants.grep(/\ASTATUS_/).map(&:to_s) - expected.keys
  end

  def test_lock_params_layout_matches_the_c_header
    skip "no C compiler" unless system("cc --version", out: File::NULL, err: File::NULL)
    params = Redilock::Native::LockParams
    offsets = params.members.map { |field| %(printf(" #{field} %zu", offsetof(redilock_lock_params, #{field}));) }
    Dir.mktmpdir do |dir|
      File.write(File.join(dir, "layout.c"), <<~C)
        #include <stddef.h>
        #include <stdio.h>
        #include "redilock.h"
        int main(void) {
            printf("size %zu", sizeof(redilock_lock_params));
            #{offsets.join(' ')}
            return 0;
        }
      C
      assert system("cc", "-I#{HEADER_DIR}", "-o", File.join(dir, "layout"), File.join(dir, "layout.c")), "compiles"
      expected = IO.popen([File.join(dir, "layout")], &:read).split.each_slice(2).to_h { |k, v| [k, Integer(v)] }
      actual = params.members.to_h { |field| [field.to_s, params.offset_of(field)] }.merge("size" => params.size)
      assert_equal expected, actual
    end
  end
end
