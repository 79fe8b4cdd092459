<?php

declare(strict_types=1);

namespace Emitgate\Internal;

use Emitgate\Binary;
use Emitgate\Exception\InvalidArgumentException;
use Emitgate\JsonObject;
use Emitgate\Proto\V1\Argument;
use Emitgate\RawJson;

/**
 * Turns PHP values into emitgate.v1.Argument messages.
 *
 * - Binary at the top level is a `binary` argument; RawJson a `json` one.
 * - Anything else is normalized (arrays, objects, JsonSerializable, dates,
 *   enums) and sent as `json` text, unless it holds a Binary somewhere inside
 *   or an integer outside ±2^53: then it is sent as one `msgpack` value, so
 *   that the bytes stay bytes and the integer stays exact.
 *
 * @internal
 */
final class ArgumentEncoder
{
    /** Most levels of arrays and maps in one argument: the gateway's limit (`max_depth`). */
    public const MAX_DEPTH = 128;
    private const SAFE_INT = 9007199254740992; // 2^53

    /**
     * Encodes a list of arguments.
     *
     * @param array<int, mixed> $args the PHP values
     * @param string $field the field path of the list, for errors (e.g. `args`)
     * @return list<Argument> one Argument per value
     * @throws InvalidArgumentException when a value cannot be encoded
     */
    public static function encodeAll(array $args, string $field): array
    {
        $out = [];
        foreach (array_values($args) as $i => $arg) {
            $out[] = self::encode($arg, $field . '[' . $i . ']');
        }
        return $out;
    }

    /**
     * Encodes one argument.
     *
     * @param mixed $value the PHP value
     * @param string $field the field path, for errors (e.g. `args[0]`)
     * @return Argument the message
     * @throws InvalidArgumentException when the value cannot be encoded
     */
    public static function encode(mixed $value, string $field): Argument
    {
        if ($value instanceof Binary) {
            return (new Argument())->setBinary($value->bytes);
        }
        if ($value instanceof RawJson) {
            self::checkUtf8($value->json, $field);
            return (new Argument())->setJson($value->json);
        }
        $needsMsgpack = false;
        $tree = self::normalize($value, $field, 0, $needsMsgpack);
        if ($needsMsgpack) {
            return (new Argument())->setMsgpack(Msgpack::encode(self::resolveRawJson($tree, $field)));
        }
        return (new Argument())->setJson(self::json($tree));
    }

    /**
     * Normalizes a PHP value into null, bool, int, float, string, Binary,
     * RawJson, list or MapNode.
     */
    private static function normalize(mixed $value, string $field, int $depth, bool &$needsMsgpack): mixed
    {
        if ($depth > self::MAX_DEPTH) {
            throw InvalidArgumentException::local($field, 'is nested more than ' . self::MAX_DEPTH . ' levels deep');
        }
        if ($value === null || is_bool($value)) {
            return $value;
        }
        if (is_int($value)) {
            if ($value > self::SAFE_INT || $value < -self::SAFE_INT) {
                $needsMsgpack = true;
            }
            return $value;
        }
        if (is_float($value)) {
            if (!is_finite($value)) {
                throw InvalidArgumentException::local($field, 'NaN and infinities cannot be sent');
            }
            return $value;
        }
        if (is_string($value)) {
            self::checkUtf8($value, $field);
            return $value;
        }
        if ($value instanceof Binary) {
            $needsMsgpack = true;
            return $value;
        }
        if ($value instanceof RawJson) {
            self::checkUtf8($value->json, $field);
            return $value;
        }
        if (is_array($value)) {
            if (array_is_list($value)) {
                $list = [];
                foreach ($value as $i => $item) {
                    $list[] = self::normalize($item, $field . '[' . $i . ']', $depth + 1, $needsMsgpack);
                }
                return $list;
            }
            return self::map($value, $field, $depth, $needsMsgpack);
        }
        if ($value instanceof JsonObject) {
            return self::map($value->properties(), $field, $depth, $needsMsgpack);
        }
        if ($value instanceof \JsonSerializable) {
            return self::normalize($value->jsonSerialize(), $field, $depth + 1, $needsMsgpack);
        }
        if ($value instanceof \DateTimeInterface) {
            return \DateTimeImmutable::createFromInterface($value)
                ->setTimezone(new \DateTimeZone('UTC'))
                ->format('Y-m-d\TH:i:s.v\Z');
        }
        if ($value instanceof \BackedEnum) {
            return self::normalize($value->value, $field, $depth + 1, $needsMsgpack);
        }
        if ($value instanceof \UnitEnum || $value instanceof \Closure) {
            throw InvalidArgumentException::local($field, get_debug_type($value) . ' cannot be sent');
        }
        if (is_object($value)) {
            return self::map(get_object_vars($value), $field, $depth, $needsMsgpack);
        }
        throw InvalidArgumentException::local($field, get_debug_type($value) . ' cannot be sent');
    }

    /**
     * @param array<array-key, mixed> $props
     */
    private static function map(array $props, string $field, int $depth, bool &$needsMsgpack): MapNode
    {
        $entries = [];
        foreach ($props as $key => $item) {
            $key = (string) $key;
            self::checkUtf8($key, $field);
            $entries[] = [$key, self::normalize($item, $field . '.' . $key, $depth + 1, $needsMsgpack)];
        }
        return new MapNode($entries);
    }

    private static function checkUtf8(string $value, string $field): void
    {
        if (preg_match('//u', $value) !== 1) {
            throw InvalidArgumentException::local(
                $field,
                'is not valid UTF-8 text; wrap binary data in Emitgate\\Binary'
            );
        }
    }

    /**
     * Replaces RawJson nodes by their decoded value, for the msgpack form.
     */
    private static function resolveRawJson(mixed $tree, string $field): mixed
    {
        if ($tree instanceof RawJson) {
            try {
                $decoded = json_decode($tree->json, false, self::MAX_DEPTH, JSON_THROW_ON_ERROR);
            } catch (\JsonException $e) {
                throw InvalidArgumentException::local($field, 'holds invalid JSON: ' . $e->getMessage(), $e);
            }
            $ignored = false;
            return self::normalize($decoded, $field, 0, $ignored);
        }
        if ($tree instanceof MapNode) {
            $entries = [];
            foreach ($tree->entries as [$key, $item]) {
                $entries[] = [$key, self::resolveRawJson($item, $field . '.' . $key)];
            }
            return new MapNode($entries);
        }
        if (is_array($tree)) {
            $list = [];
            foreach ($tree as $i => $item) {
                $list[] = self::resolveRawJson($item, $field . '[' . $i . ']');
            }
            return $list;
        }
        return $tree;
    }

    /**
     * Writes a normalized tree as JSON text.
     */
    private static function json(mixed $tree): string
    {
        if ($tree instanceof RawJson) {
            return $tree->json;
        }
        if ($tree instanceof MapNode) {
            $parts = [];
            foreach ($tree->entries as [$key, $item]) {
                $parts[] = self::scalar($key) . ':' . self::json($item);
            }
            return '{' . implode(',', $parts) . '}';
        }
        if (is_array($tree)) {
            return '[' . implode(',', array_map([self::class, 'json'], $tree)) . ']';
        }
        return self::scalar($tree);
    }

    private static function scalar(mixed $value): string
    {
        return json_encode(
            $value,
            JSON_UNESCAPED_UNICODE | JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION | JSON_THROW_ON_ERROR
        );
    }
}
