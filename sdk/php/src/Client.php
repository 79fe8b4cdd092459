<?php

declare(strict_types=1);

namespace Emitgate;

use Emitgate\Exception\EmitgateException;
use Emitgate\Exception\InvalidArgumentException;
use Emitgate\Internal\BatchLimit;
use Emitgate\Internal\Feedback;
use Emitgate\Internal\Operators;
use Emitgate\Internal\Requests;
use Emitgate\Internal\Scope;
use Emitgate\Internal\Texts;
use Emitgate\Proto\V1\BroadcastResponse;
use Emitgate\Proto\V1\DisconnectSocketsRequest;
use Emitgate\Proto\V1\DisconnectSocketsResponse;
use Emitgate\Proto\V1\EmitResponse;
use Emitgate\Proto\V1\ServerSideEmitRequest;
use Emitgate\Proto\V1\ServerSideEmitResponse;
use Emitgate\Proto\V1\SocketsJoinRequest;
use Emitgate\Proto\V1\SocketsJoinResponse;
use Emitgate\Proto\V1\SocketsLeaveRequest;
use Emitgate\Proto\V1\SocketsLeaveResponse;
use Emitgate\Transport\CurlTransport;

/**
 * An emitter that publishes Socket.IO events through an emitgate gateway.
 *
 * The operators (of, to, in, except, volatile, compress, target, timeout)
 * are immutable: each returns a new Client that shares the connection.
 * timeout() is also how long the waiting calls (emitWithAck, fetchSockets,
 * allRooms, serverSideEmitWithAck; see Internal\Feedback) wait for answers.
 *
 * ```php
 * $io = new Client('127.0.0.1:50051', apiKey: getenv('EMITGATE_API_KEY') ?: null);
 * $io->to('room1')->except('muted')->emit('chat', ['text' => 'hi']);
 * $io->of('/admin')->broadcast('notice', 'restarting');
 * ```
 */
final class Client
{
    use Operators;
    use Feedback;

    private Scope $scope;

    private CurlTransport $transport;

    /** The BatchEmit chunk size, shared with the clients derived from this one. */
    private BatchLimit $batchLimit;

    /**
     * @param string $address the gateway: `host:port` or `http://host:port` for
     *        plaintext HTTP/2, `https://host:port` for TLS
     * @param string|null $apiKey sent as `authorization: Bearer <key>`
     * @param float $timeout the default deadline of a call, in seconds
     * @param string|null $caFile PEM CA bundle to verify the gateway (TLS)
     * @param string|null $certFile PEM client certificate (mutual TLS)
     * @param string|null $keyFile PEM client key (mutual TLS)
     * @param int|null $maxMessageBytes the largest message sent or received
     *        (4 MiB, the gRPC default); null for no client-side limit
     * @param float $connectTimeout seconds allowed to open a connection
     * @param int $maxBatchItems the largest BatchEmit request a batch sends
     *        (the gateway's default `max_batch_items`); a larger batch is
     *        split, and the client lowers it by itself when the gateway says
     *        a request has too many items
     */
    public function __construct(
        string $address,
        ?string $apiKey = null,
        private float $timeout = 5.0,
        ?string $caFile = null,
        ?string $certFile = null,
        ?string $keyFile = null,
        ?int $maxMessageBytes = CurlTransport::DEFAULT_MAX_MESSAGE_BYTES,
        float $connectTimeout = 5.0,
        int $maxBatchItems = BatchLimit::DEFAULT_MAX_BATCH_ITEMS,
    ) {
        self::checkTimeout($timeout);
        $this->batchLimit = new BatchLimit($maxBatchItems);
        $this->transport = new CurlTransport(
            $address,
            $apiKey,
            $caFile,
            $certFile,
            $keyFile,
            $maxMessageBytes,
            $connectTimeout
        );
        $this->scope = new Scope();
    }

    /**
     * Sets the deadline of the calls made through the returned client.
     *
     * @param float $seconds the deadline, more than 0
     * @return static a new instance with that deadline
     */
    public function timeout(float $seconds): static
    {
        self::checkTimeout($seconds);
        $copy = clone $this;
        $copy->timeout = $seconds;
        return $copy;
    }

    /**
     * Sends an event to the sockets in the selected rooms (to()/in()), minus
     * the excepted rooms. At least one room is required: use broadcast() to
     * reach a whole namespace.
     *
     * @param string $event the event name (not a reserved one such as `connect`)
     * @param mixed ...$args the arguments, by position: scalars, arrays,
     *        objects, Binary, RawJson (a named argument is refused; the
     *        idempotency key is set with idempotencyKey())
     * @return Result how many server subscriptions received the packet
     * @throws EmitgateException when the call fails
     */
    public function emit(string $event, mixed ...$args): Result
    {
        $request = Requests::emit($this->scope, $event, $args);
        return Requests::result(
            Requests::call($this->transport, 'Emit', $request, new EmitResponse(), $this->timeout)
        );
    }

    /**
     * Sends an event to every socket of the namespace, minus the excepted
     * rooms.
     *
     * @param string $event the event name
     * @param mixed ...$args the arguments, by position, as in emit()
     * @return Result how many server subscriptions received the packet
     * @throws EmitgateException when the call fails, or locally when to() was used
     */
    public function broadcast(string $event, mixed ...$args): Result
    {
        $request = Requests::broadcast($this->scope, $event, $args);
        return Requests::result(
            Requests::call($this->transport, 'Broadcast', $request, new BroadcastResponse(), $this->timeout)
        );
    }

    /**
     * Makes the selected sockets (the rooms of to(), all sockets of the
     * namespace when none, minus except()) join rooms.
     *
     * @param string|list<string> $rooms the rooms to join
     * @param string|null $idempotencyKey publish at most once per key within
     *        the gateway's window; a repeat answers the first result with
     *        `duplicate` true (the same as idempotencyKey($key)->...; when
     *        both are given they must be equal)
     * @return Result how many servers received the request
     * @throws EmitgateException when the call fails
     */
    public function socketsJoin(string|array $rooms, ?string $idempotencyKey = null): Result
    {
        $request = new SocketsJoinRequest();
        $this->select($request, $idempotencyKey);
        $request->setJoinRooms(Texts::rooms([], [$rooms], 'join_rooms'));
        $response = Requests::call(
            $this->transport,
            'SocketsJoin',
            $request,
            new SocketsJoinResponse(),
            $this->timeout
        );
        return Requests::result($response);
    }

    /**
     * Makes the selected sockets leave rooms.
     *
     * @param string|list<string> $rooms the rooms to leave
     * @param string|null $idempotencyKey publish at most once per key within
     *        the gateway's window; a repeat answers the first result with
     *        `duplicate` true (the same as idempotencyKey($key)->...; when
     *        both are given they must be equal)
     * @return Result how many servers received the request
     * @throws EmitgateException when the call fails
     */
    public function socketsLeave(string|array $rooms, ?string $idempotencyKey = null): Result
    {
        $request = new SocketsLeaveRequest();
        $this->select($request, $idempotencyKey);
        $request->setLeaveRooms(Texts::rooms([], [$rooms], 'leave_rooms'));
        $response = Requests::call(
            $this->transport,
            'SocketsLeave',
            $request,
            new SocketsLeaveResponse(),
            $this->timeout
        );
        return Requests::result($response);
    }

    /**
     * Disconnects the selected sockets.
     *
     * @param bool $close true to close the underlying connection too (which
     *        ends the socket's other namespaces); false to leave this
     *        namespace only
     * @param string|null $idempotencyKey publish at most once per key within
     *        the gateway's window; a repeat answers the first result with
     *        `duplicate` true (the same as idempotencyKey($key)->...; when
     *        both are given they must be equal)
     * @return Result how many servers received the request
     * @throws EmitgateException when the call fails
     */
    public function disconnectSockets(bool $close = false, ?string $idempotencyKey = null): Result
    {
        $request = new DisconnectSocketsRequest();
        $this->select($request, $idempotencyKey);
        $request->setClose($close);
        $response = Requests::call(
            $this->transport,
            'DisconnectSockets',
            $request,
            new DisconnectSocketsResponse(),
            $this->timeout
        );
        return Requests::result($response);
    }

    /**
     * Sends an event to the Socket.IO servers of the namespace: it reaches
     * their `io.of(namespace).on(event, ...)` handlers, not the clients.
     * Arguments must be JSON (no Binary); rooms do not apply.
     *
     * @param string $event the event name
     * @param mixed ...$args the arguments, by position, as in emit()
     * @return Result how many servers received the event
     * @throws EmitgateException when the call fails, or locally when to() was used
     */
    public function serverSideEmit(string $event, mixed ...$args): Result
    {
        Requests::positional($args);
        Requests::noRooms($this->scope, '', 'serverSideEmit() reaches servers, not rooms');
        if ($this->scope->except !== []) {
            throw InvalidArgumentException::local('except_rooms', 'serverSideEmit() reaches servers, not rooms');
        }
        Texts::check($event, 'event');
        $request = new ServerSideEmitRequest();
        $request->setTarget($this->scope->target);
        $request->setNamespace($this->scope->namespace);
        $request->setEvent($event);
        $request->setArgs(\Emitgate\Internal\ArgumentEncoder::encodeAll($args, 'args'));
        $request->setIdempotencyKey($this->scope->idempotencyKey);
        $response = Requests::call(
            $this->transport,
            'ServerSideEmit',
            $request,
            new ServerSideEmitResponse(),
            $this->timeout
        );
        return Requests::result($response);
    }

    /**
     * Starts a batch: many emits and broadcasts sent in one call. The batch
     * starts from this client's scope (target, namespace, rooms, flags) and
     * deadline.
     *
     * @return Batch an empty batch
     */
    public function batch(): Batch
    {
        $this->noKeyForMany('batch()');
        return new Batch($this->transport, $this->scope, $this->timeout, $this->batchLimit);
    }

    /**
     * Starts a Publisher: events published one at a time through the usual
     * operators, sent in batches (BatchEmit) when a batch is full, on
     * flush() and on close(). It starts from this client's scope and
     * deadline.
     *
     * ```php
     * $publisher = $io->publisher(['maxItems' => 500]);
     * $handle = $publisher->to('room1')->emit('chat', 'hi');
     * $publisher->flush();
     * $handle->get();   // the ItemResult, or throws the item's error
     * ```
     *
     * @param array<string, mixed> $options the named parameters of
     *        Publisher::__construct(): maxItems, maxBytes, buffer, onFull
     * @return Publisher the publisher
     */
    public function publisher(array $options = []): Publisher
    {
        return new Publisher($this, ...$options);
    }

    /**
     * Returns the transport shared by this client and the clients derived
     * from it.
     *
     * @return CurlTransport the transport
     */
    public function getTransport(): CurlTransport
    {
        return $this->transport;
    }

    /**
     * Closes the connection of the shared transport; the next call reconnects.
     */
    public function close(): void
    {
        $this->transport->close();
    }

    /**
     * Returns the current scope.
     *
     * @return Scope the scope
     */
    protected function scope(): Scope
    {
        return $this->scope;
    }

    /**
     * Returns a copy with another scope.
     *
     * @param Scope $scope the new scope
     * @return static the copy
     */
    protected function withScope(Scope $scope): static
    {
        $copy = clone $this;
        $copy->scope = $scope;
        return $copy;
    }

    private function select(
        SocketsJoinRequest|SocketsLeaveRequest|DisconnectSocketsRequest $request,
        ?string $idempotencyKey
    ): void {
        $key = $this->scope->idempotencyKey;
        if ($idempotencyKey !== null && $idempotencyKey !== '') {
            if ($key !== '' && $key !== $idempotencyKey) {
                throw InvalidArgumentException::local(
                    'idempotency_key',
                    'two different keys: one from idempotencyKey(), one as the argument'
                );
            }
            $key = Requests::checkIdempotencyKey($idempotencyKey);
        }
        $request->setIdempotencyKey($key);
        $request->setTarget($this->scope->target);
        $request->setNamespace($this->scope->namespace);
        $request->setRooms($this->scope->rooms);
        $request->setExceptRooms($this->scope->except);
    }

    /**
     * Refuses to start many items from a keyed scope: every item would carry
     * the same key, and all but the first would be duplicates.
     *
     * @param string $what what was called, for the message
     * @throws \LogicException when this client has an idempotency key
     * @internal
     */
    public function noKeyForMany(string $what): void
    {
        if ($this->scope->idempotencyKey !== '') {
            throw new \LogicException(
                $what . ' on a client with an idempotency key: a key is for one event; '
                . 'set it per item with ->idempotencyKey($key)->emit(...)'
            );
        }
    }

    /**
     * Returns the deadline of calls, in seconds.
     *
     * @return float the timeout
     * @internal
     */
    public function getTimeout(): float
    {
        return $this->timeout;
    }

    /**
     * Returns the scope of this client, for the Publisher.
     *
     * @return Scope the scope
     * @internal
     */
    public function getScope(): Scope
    {
        return $this->scope;
    }

    /**
     * Returns the shared BatchEmit chunk size.
     *
     * @return BatchLimit the limit
     * @internal
     */
    public function getBatchLimit(): BatchLimit
    {
        return $this->batchLimit;
    }

    private static function checkTimeout(float $seconds): void
    {
        if (!($seconds > 0) || !is_finite($seconds)) {
            throw new \InvalidArgumentException('the timeout must be a positive number of seconds');
        }
    }
}
