<?php

declare(strict_types=1);

namespace Emitgate\Internal;

use Emitgate\Exception\EmitgateException;
use Emitgate\Exception\InternalException;
use Emitgate\Exception\InvalidArgumentException;
use Emitgate\Code;
use Emitgate\Result;
use Emitgate\Proto\V1\BroadcastRequest;
use Emitgate\Proto\V1\EmitFlags;
use Emitgate\Proto\V1\EmitRequest;
use Emitgate\Transport\CurlTransport;
use Google\Protobuf\Internal\Message;

/**
 * Builds request messages from a scope and sends them.
 *
 * @internal
 */
final class Requests
{
    public const SERVICE = '/emitgate.v1.EmitterService/';

    /**
     * Builds an EmitRequest.
     *
     * @param Scope $scope the rooms, namespace, target and flags
     * @param string $event the event name
     * @param array<int|string, mixed> $args the arguments, by position
     * @param string $prefix the field path prefix for errors ('' or `items[3].emit.`)
     * @return EmitRequest the request
     */
    public static function emit(Scope $scope, string $event, array $args, string $prefix = ''): EmitRequest
    {
        self::positional($args);
        Texts::check($event, $prefix . 'event');
        $request = new EmitRequest();
        $request->setIdempotencyKey($scope->idempotencyKey);
        $request->setTarget($scope->target);
        $request->setNamespace($scope->namespace);
        $request->setRooms($scope->rooms);
        $request->setExceptRooms($scope->except);
        $request->setEvent($event);
        $request->setArgs(ArgumentEncoder::encodeAll($args, $prefix . 'args'));
        $flags = self::flags($scope);
        if ($flags !== null) {
            $request->setFlags($flags);
        }
        return $request;
    }

    /**
     * Builds a BroadcastRequest; the scope must not name rooms.
     *
     * @param Scope $scope the namespace, target, excepted rooms and flags
     * @param string $event the event name
     * @param array<int|string, mixed> $args the arguments, by position
     * @param string $prefix the field path prefix for errors
     * @return BroadcastRequest the request
     */
    public static function broadcast(Scope $scope, string $event, array $args, string $prefix = ''): BroadcastRequest
    {
        self::positional($args);
        self::noRooms($scope, $prefix, 'broadcast() reaches the whole namespace; use emit() to reach rooms');
        Texts::check($event, $prefix . 'event');
        $request = new BroadcastRequest();
        $request->setIdempotencyKey($scope->idempotencyKey);
        $request->setTarget($scope->target);
        $request->setNamespace($scope->namespace);
        $request->setExceptRooms($scope->except);
        $request->setEvent($event);
        $request->setArgs(ArgumentEncoder::encodeAll($args, $prefix . 'args'));
        $flags = self::flags($scope);
        if ($flags !== null) {
            $request->setFlags($flags);
        }
        return $request;
    }

    /**
     * Refuses named arguments in the event arguments of a variadic call.
     *
     * PHP collects `emit('x', 1, name: 2)` (and a spread of a string-keyed
     * array) into the variadic array under string keys. Event arguments are
     * positional, so such a call is refused the way PHP refuses an unknown
     * named parameter, rather than guessing: an earlier version of the SDK
     * took `idempotencyKey:` out of the arguments, and silently sending that
     * key to the clients as an argument (without deduplication) would be
     * worse than failing.
     *
     * @param array<int|string, mixed> $args the arguments
     * @throws \Error when an argument is named
     */
    public static function positional(array $args): void
    {
        if (array_is_list($args)) {
            return;
        }
        foreach ($args as $name => $value) {
            if (is_int($name)) {
                continue;
            }
            if ($name === 'idempotencyKey') {
                throw new \Error(
                    'Unknown named parameter $idempotencyKey: event arguments are positional; '
                    . 'set the key with ->idempotencyKey($key) before emit()'
                );
            }
            throw new \Error('Unknown named parameter $' . $name);
        }
    }

    /**
     * Checks an idempotency key.
     *
     * @param string|null $key the key; null or '' for none
     * @param string $prefix the field path prefix for errors
     * @return string the key, '' when none
     * @throws InvalidArgumentException when the key is not UTF-8 text
     */
    public static function checkIdempotencyKey(?string $key, string $prefix = ''): string
    {
        $key ??= '';
        Texts::check($key, $prefix . 'idempotency_key');
        return $key;
    }

    /**
     * Turns the response of a single operation into a Result.
     *
     * @param Message $response an EmitResponse, BroadcastResponse, SocketsJoinResponse, ...
     * @return Result the result
     */
    public static function result(Message $response): Result
    {
        /** @var \Emitgate\Proto\V1\EmitResponse $response */
        $streamId = $response->getStreamId();
        return new Result(
            (int) $response->getReceivers(),
            $response->getDuplicate(),
            $streamId === '' ? null : $streamId
        );
    }

    /**
     * Throws when the scope has rooms.
     *
     * @param Scope $scope the scope
     * @param string $prefix the field path prefix
     * @param string $why the error description
     */
    public static function noRooms(Scope $scope, string $prefix, string $why): void
    {
        if ($scope->rooms !== []) {
            throw InvalidArgumentException::local($prefix . 'rooms', $why);
        }
    }

    /**
     * Sends a unary call and parses the answer.
     *
     * @template T of Message
     * @param CurlTransport $transport the transport
     * @param string $method the method name, e.g. `Emit`
     * @param Message $request the request
     * @param T $response an empty response message to fill
     * @param float $timeout the deadline in seconds
     * @return T the response
     * @throws EmitgateException when the call fails
     */
    public static function call(
        CurlTransport $transport,
        string $method,
        Message $request,
        Message $response,
        float $timeout
    ): Message {
        $bytes = $transport->call(self::SERVICE . $method, $request->serializeToString(), $timeout);
        try {
            $response->mergeFromString($bytes);
        } catch (\Exception $e) {
            $message = 'malformed ' . $method . ' answer: ' . $e->getMessage();
            throw new InternalException(Code::INTERNAL, $message, true, null, $e);
        }
        return $response;
    }

    /**
     * Builds the flags message, or null when no flag is set.
     */
    private static function flags(Scope $scope): ?EmitFlags
    {
        if (!$scope->volatile && $scope->compress === null) {
            return null;
        }
        // The pure-PHP Protobuf runtime before 3.22 stores the synthetic oneof
        // of a proto3 `optional` field (`_compress`) in a dynamic property,
        // which PHP 8.2 reports as deprecated. The message works all the same:
        // silence that one notice instead of passing it on to the application.
        set_error_handler(
            static fn (int $errno, string $message): bool => str_contains($message, '::$_compress'),
            E_DEPRECATED
        );
        try {
            $flags = new EmitFlags();
        } finally {
            restore_error_handler();
        }
        $flags->setVolatile($scope->volatile);
        if ($scope->compress !== null) {
            $flags->setCompress($scope->compress);
        }
        return $flags;
    }
}
