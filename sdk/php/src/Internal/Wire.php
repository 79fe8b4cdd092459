<?php

declare(strict_types=1);

namespace Emitgate\Internal;

use Emitgate\Code;
use Emitgate\Exception\EmitgateException;
use Emitgate\Exception\InternalException;
use Emitgate\FieldViolation;
use Emitgate\ItemResult;
use Emitgate\Proto\V1\ItemResult as ProtoItemResult;

/**
 * The Protobuf wire form of BatchEmit items and answers, written and read
 * directly: the Publisher's hot path. The pure-PHP Protobuf runtime spends
 * tens of microseconds building, serializing and parsing one message, more
 * than the rest of a publish; these few messages are simple enough to
 * write by hand. The bytes are the ones the generated classes write (a test
 * compares them).
 *
 * Field numbers and wire types are those of proto/emitgate/v1/emitter.proto.
 *
 * @internal
 */
final class Wire
{
    /** The BatchEmitRequest.items tag (field 1, length-delimited). */
    public const BATCH_ITEMS_TAG = "\x0a";

    /** EmitRequest / BroadcastRequest fields: [target, namespace, rooms, except, event, args, flags, key]. */
    private const EMIT_TAGS = ["\x0a", "\x12", "\x1a", "\x22", "\x2a", "\x32", "\x3a", "\x42"];
    private const BROADCAST_TAGS = ["\x0a", "\x12", null, "\x1a", "\x22", "\x2a", "\x32", "\x3a"];

    /** BatchItem.emit (field 1) and BatchItem.broadcast (field 2). */
    private const ITEM_EMIT = "\x0a";
    private const ITEM_BROADCAST = "\x12";

    /** Argument.binary (2), Argument.json (3), Argument.msgpack (4). */
    private const ARG_BINARY = "\x12";
    private const ARG_JSON = "\x1a";
    private const ARG_MSGPACK = "\x22";

    /** The largest integer sent as JSON; beyond it MessagePack keeps it exact (as ArgumentEncoder). */
    private const SAFE_INT = 9007199254740992;

    private const JSON_FLAGS = JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION
        | JSON_THROW_ON_ERROR;

    /**
     * Encodes a varint.
     *
     * @param int $n a non-negative integer
     * @return string its varint bytes
     */
    public static function varint(int $n): string
    {
        if ($n < 0x80) {
            return chr($n);
        }
        $out = '';
        while ($n >= 0x80) {
            $out .= chr(($n & 0x7f) | 0x80);
            $n >>= 7;
        }
        return $out . chr($n);
    }

    /**
     * Writes the fields of a scope that do not depend on the event (target,
     * namespace, rooms, excepted rooms; flags and key) for an emit or a
     * broadcast, as [head, tail] around the event and arguments.
     *
     * @param Scope $scope the scope
     * @param bool $broadcast true for a BroadcastRequest
     * @return array{0: string, 1: string} the bytes before the event, and after the arguments
     */
    public static function scopeBytes(Scope $scope, bool $broadcast): array
    {
        $tags = $broadcast ? self::BROADCAST_TAGS : self::EMIT_TAGS;
        $head = '';
        if ($scope->target !== '') {
            $head .= $tags[0] . self::varint(strlen($scope->target)) . $scope->target;
        }
        if ($scope->namespace !== '') {
            $head .= $tags[1] . self::varint(strlen($scope->namespace)) . $scope->namespace;
        }
        if (!$broadcast) {
            foreach ($scope->rooms as $room) {
                $head .= $tags[2] . self::varint(strlen($room)) . $room;
            }
        }
        foreach ($scope->except as $room) {
            $head .= $tags[3] . self::varint(strlen($room)) . $room;
        }
        $tail = '';
        if ($scope->volatile || $scope->compress !== null) {
            $flags = $scope->volatile ? "\x08\x01" : '';
            if ($scope->compress !== null) {
                $flags .= $scope->compress ? "\x10\x01" : "\x10\x00";
            }
            $tail .= $tags[6] . chr(strlen($flags)) . $flags;
        }
        if ($scope->idempotencyKey !== '') {
            $tail .= $tags[7] . self::varint(strlen($scope->idempotencyKey)) . $scope->idempotencyKey;
        }
        return [$head, $tail];
    }

    /**
     * Writes one BatchEmitRequest.items entry (tag, length and BatchItem).
     * The scope's rooms, except and key are checked UTF-8 already (by the
     * operators); the event and arguments are checked here.
     *
     * @param array{0: string, 1: string} $scopeBytes scopeBytes() of the item's scope
     * @param bool $broadcast true for a broadcast, false for an emit
     * @param string $event the event name
     * @param array<int, mixed> $args the arguments, by position
     * @return string the bytes
     * @throws \Emitgate\Exception\InvalidArgumentException locally when an argument cannot be encoded
     */
    public static function item(array $scopeBytes, bool $broadcast, string $event, array $args): string
    {
        if (preg_match('//u', $event) !== 1) {
            Texts::check($event, 'event');
        }
        $tags = $broadcast ? self::BROADCAST_TAGS : self::EMIT_TAGS;
        $body = $scopeBytes[0];
        if ($event !== '') {
            $body .= $tags[4] . self::varint(strlen($event)) . $event;
        }
        $argTag = $tags[5];
        foreach ($args as $i => $arg) {
            $a = self::argument($arg, $i);
            $body .= $argTag . self::varint(strlen($a)) . $a;
        }
        $body .= $scopeBytes[1];
        $item = ($broadcast ? self::ITEM_BROADCAST : self::ITEM_EMIT) . self::varint(strlen($body)) . $body;
        return self::BATCH_ITEMS_TAG . self::varint(strlen($item)) . $item;
    }

    /**
     * Writes one Argument message.
     *
     * @param mixed $value the PHP value
     * @param int $i its position, for errors (`args[i]`)
     * @return string the Argument bytes
     */
    private static function argument(mixed $value, int $i): string
    {
        $json = self::plainJson($value);
        if ($json === null) {
            $message = ArgumentEncoder::encode($value, 'args[' . $i . ']');
            if ($message->hasJson()) {
                $json = $message->getJson();
            } elseif ($message->hasBinary()) {
                $bytes = $message->getBinary();
                return self::ARG_BINARY . self::varint(strlen($bytes)) . $bytes;
            } else {
                $bytes = $message->getMsgpack();
                return self::ARG_MSGPACK . self::varint(strlen($bytes)) . $bytes;
            }
        }
        return self::ARG_JSON . self::varint(strlen($json)) . $json;
    }

    /**
     * The JSON text of a value made only of null, bools, integers within
     * ±2^53, finite floats, UTF-8 strings and arrays of them, which
     * json_encode() writes exactly as ArgumentEncoder would; null for
     * anything else (objects, Binary, big integers, bad text), which takes
     * ArgumentEncoder's path and its errors.
     */
    private static function plainJson(mixed $value): ?string
    {
        if (is_array($value) ? !self::plain($value) : is_object($value) || (is_int($value) && !self::safe($value))) {
            return null;
        }
        try {
            return json_encode($value, self::JSON_FLAGS);
        } catch (\JsonException) {
            return null;
        }
    }

    /**
     * Tells whether an array holds no object and no integer beyond ±2^53, at
     * any depth (a plain foreach: several times faster than
     * array_walk_recursive() with a closure).
     *
     * @param array<array-key, mixed> $array
     */
    private static function plain(array $array): bool
    {
        foreach ($array as $v) {
            if (is_array($v)) {
                if (!self::plain($v)) {
                    return false;
                }
            } elseif (is_object($v) || (is_int($v) && ($v > self::SAFE_INT || $v < -self::SAFE_INT))) {
                return false;
            }
        }
        return true;
    }

    private static function safe(int $n): bool
    {
        return $n <= self::SAFE_INT && $n >= -self::SAFE_INT;
    }

    /**
     * Reads a BatchEmitResponse.
     *
     * @param string $bytes the message
     * @param int $count the number of items sent
     * @return list<ItemResult> one result per item
     * @throws InternalException when the answer is malformed or does not hold $count results
     */
    public static function results(string $bytes, int $count): array
    {
        $results = [];
        // Results are immutable, and most answers repeat a few short ones
        // ("published, 1 receiver"): read each distinct short one once.
        $seen = [];
        $pos = 0;
        $end = strlen($bytes);
        while ($pos < $end) {
            if ($bytes[$pos] === "\x0a" && $pos + 1 < $end && ($len = ord($bytes[$pos + 1])) < 0x80) {
                $pos += 2;
                $item = substr($bytes, $pos, $len);
                $results[] = $seen[$item] ??= self::itemResult($bytes, $pos, $len);
                $pos += $len;
                continue;
            }
            $key = self::readVarint($bytes, $pos);
            if ($key === 0x0a) {
                $len = self::readVarint($bytes, $pos);
                $results[] = self::itemResult($bytes, $pos, $len);
                $pos += $len;
            } else {
                self::skip($bytes, $pos, $key);
            }
        }
        if ($pos !== $end) {
            throw self::malformed();
        }
        if (count($results) !== $count) {
            throw new InternalException(
                Code::INTERNAL,
                sprintf('the gateway answered %d results for %d items', count($results), $count),
                true
            );
        }
        return $results;
    }

    /**
     * Reads one ItemResult of $len bytes at $pos.
     */
    private static function itemResult(string $bytes, int $start, int $len): ItemResult
    {
        $pos = $start;
        $end = $start + $len;
        $receivers = 0;
        $duplicate = false;
        $streamId = null;
        while ($pos < $end) {
            $key = self::readVarint($bytes, $pos);
            if ($key === 0x20) {
                $receivers = self::readVarint($bytes, $pos);
            } elseif ($key === 0x28) {
                $duplicate = self::readVarint($bytes, $pos) !== 0;
            } elseif ($key === 0x32) {
                $n = self::readVarint($bytes, $pos);
                $streamId = substr($bytes, $pos, $n);
                $pos += $n;
            } elseif ($key === 0x08 || $key === 0x12 || $key === 0x1a) {
                // A code, message or violations: a failed item, rare enough
                // for the generated class.
                return self::failedItem(substr($bytes, $start, $len));
            } else {
                self::skip($bytes, $pos, $key);
            }
        }
        if ($pos !== $end) {
            throw self::malformed();
        }
        return new ItemResult(Code::OK, '', [], $receivers, $duplicate, $streamId === '' ? null : $streamId);
    }

    private static function failedItem(string $bytes): ItemResult
    {
        $r = new ProtoItemResult();
        try {
            $r->mergeFromString($bytes);
        } catch (\Exception $e) {
            $message = 'malformed BatchEmit answer: ' . $e->getMessage();
            throw new InternalException(Code::INTERNAL, $message, true, null, $e);
        }
        $violations = [];
        foreach ($r->getViolations() as $v) {
            $violations[] = new FieldViolation($v->getField(), $v->getDescription());
        }
        return new ItemResult(
            Code::fromInt($r->getCode()),
            $r->getMessage(),
            $violations,
            (int) $r->getReceivers(),
            $r->getDuplicate(),
            $r->getStreamId() === '' ? null : $r->getStreamId()
        );
    }

    /**
     * Reads a google.rpc.ErrorInfo (reason = 1, domain = 2, metadata = 3 as
     * map entries of key = 1, value = 2) and returns its metadata when the
     * reason and domain are the gateway's for a violated limit: each limit's
     * name and value. Read here rather than with the Protobuf runtime, whose
     * map iterator is deprecated on PHP 8.2.
     *
     * @param string $bytes the encoded ErrorInfo
     * @return array<string, int> the limits, empty for another ErrorInfo
     * @throws InternalException when the bytes are malformed
     */
    public static function limits(string $bytes): array
    {
        $fields = [1 => '', 2 => ''];
        $metadata = [];
        $pos = 0;
        $len = strlen($bytes);
        while ($pos < $len) {
            $key = self::readVarint($bytes, $pos);
            if (($key & 7) !== 2 || ($key >> 3) < 1 || ($key >> 3) > 3) {
                self::skip($bytes, $pos, $key);
                continue;
            }
            $size = self::readVarint($bytes, $pos);
            if ($pos + $size > $len) {
                throw self::malformed();
            }
            $value = substr($bytes, $pos, $size);
            $pos += $size;
            if (($key >> 3) < 3) {
                $fields[$key >> 3] = $value;
                continue;
            }
            $entry = [1 => '', 2 => ''];
            $at = 0;
            while ($at < $size) {
                $k = self::readVarint($value, $at);
                if (($k & 7) === 2 && (($k >> 3) === 1 || ($k >> 3) === 2)) {
                    $n = self::readVarint($value, $at);
                    $entry[$k >> 3] = substr($value, $at, $n);
                    $at += $n;
                } else {
                    self::skip($value, $at, $k);
                }
            }
            $metadata[$entry[1]] = $entry[2];
        }
        if ($fields[1] !== EmitgateException::LIMIT_EXCEEDED || $fields[2] !== EmitgateException::ERROR_DOMAIN) {
            return [];
        }
        $limits = [];
        foreach ($metadata as $name => $value) {
            if ($name !== '' && ctype_digit($value)) {
                $limits[(string) $name] = (int) $value;
            }
        }
        return $limits;
    }

    private static function readVarint(string $bytes, int &$pos): int
    {
        $n = 0;
        $shift = 0;
        $len = strlen($bytes);
        do {
            if ($pos >= $len || $shift > 63) {
                throw self::malformed();
            }
            $b = ord($bytes[$pos++]);
            $n |= ($b & 0x7f) << $shift;
            $shift += 7;
        } while ($b >= 0x80);
        return $n;
    }

    private static function skip(string $bytes, int &$pos, int $key): void
    {
        switch ($key & 7) {
            case 0:
                self::readVarint($bytes, $pos);
                return;
            case 1:
                $pos += 8;
                return;
            case 2:
                $pos += self::readVarint($bytes, $pos);
                return;
            case 5:
                $pos += 4;
                return;
            default:
                throw self::malformed();
        }
    }

    private static function malformed(): InternalException
    {
        return new InternalException(Code::INTERNAL, 'malformed BatchEmit answer', true);
    }
}
