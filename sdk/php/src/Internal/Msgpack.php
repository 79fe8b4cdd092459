<?php

declare(strict_types=1);

namespace Emitgate\Internal;

use Emitgate\Binary;

/**
 * A MessagePack encoder for normalized argument trees (see ArgumentEncoder),
 * with the same choices as notepack.io, the encoder the Socket.IO Redis
 * emitter uses: the smallest integer form, float64 for floats, str for text,
 * bin for bytes.
 *
 * @internal
 */
final class Msgpack
{
    /**
     * Encodes a normalized value.
     *
     * @param mixed $value null, bool, int, float, string (UTF-8), Binary, a list
     *        of values or a MapNode
     * @return string the MessagePack bytes
     */
    public static function encode(mixed $value): string
    {
        if ($value === null) {
            return "\xc0";
        }
        if ($value === false) {
            return "\xc2";
        }
        if ($value === true) {
            return "\xc3";
        }
        if (is_int($value)) {
            return self::int($value);
        }
        if (is_float($value)) {
            return "\xcb" . pack('E', $value);
        }
        if (is_string($value)) {
            return self::str($value);
        }
        if ($value instanceof Binary) {
            $len = strlen($value->bytes);
            if ($len < 0x100) {
                return "\xc4" . chr($len) . $value->bytes;
            }
            if ($len < 0x10000) {
                return "\xc5" . pack('n', $len) . $value->bytes;
            }
            return "\xc6" . pack('N', $len) . $value->bytes;
        }
        if ($value instanceof MapNode) {
            $count = count($value->entries);
            if ($count < 16) {
                $out = chr(0x80 | $count);
            } elseif ($count < 0x10000) {
                $out = "\xde" . pack('n', $count);
            } else {
                $out = "\xdf" . pack('N', $count);
            }
            foreach ($value->entries as [$key, $item]) {
                $out .= self::str($key) . self::encode($item);
            }
            return $out;
        }
        if (is_array($value)) {
            $count = count($value);
            if ($count < 16) {
                $out = chr(0x90 | $count);
            } elseif ($count < 0x10000) {
                $out = "\xdc" . pack('n', $count);
            } else {
                $out = "\xdd" . pack('N', $count);
            }
            foreach ($value as $item) {
                $out .= self::encode($item);
            }
            return $out;
        }
        throw new \LogicException('not a normalized value: ' . get_debug_type($value));
    }

    private static function int(int $v): string
    {
        if ($v >= 0) {
            if ($v < 0x80) {
                return chr($v);
            }
            if ($v < 0x100) {
                return "\xcc" . chr($v);
            }
            if ($v < 0x10000) {
                return "\xcd" . pack('n', $v);
            }
            if ($v < 0x100000000) {
                return "\xce" . pack('N', $v);
            }
            return "\xcf" . pack('J', $v);
        }
        if ($v >= -32) {
            return chr($v & 0xff);
        }
        if ($v >= -0x80) {
            return "\xd0" . chr($v & 0xff);
        }
        if ($v >= -0x8000) {
            return "\xd1" . pack('n', $v & 0xffff);
        }
        if ($v >= -0x80000000) {
            return "\xd2" . pack('N', $v & 0xffffffff);
        }
        return "\xd3" . pack('J', $v);
    }

    private static function str(string $s): string
    {
        $len = strlen($s);
        if ($len < 32) {
            return chr(0xa0 | $len) . $s;
        }
        if ($len < 0x100) {
            return "\xd9" . chr($len) . $s;
        }
        if ($len < 0x10000) {
            return "\xda" . pack('n', $len) . $s;
        }
        return "\xdb" . pack('N', $len) . $s;
    }
}
