<?php

declare(strict_types=1);

namespace Emitgate;

use Emitgate\Exception\EmitgateException;
use Emitgate\Internal\Requests;
use Emitgate\Internal\Scope;
use Emitgate\Proto\V1\BatchEmitRequest;
use Emitgate\Proto\V1\BatchEmitResponse;
use Emitgate\Proto\V1\BatchItem;
use Emitgate\Proto\V1\FieldViolation as ProtoFieldViolation;
use Emitgate\Transport\CurlTransport;

/**
 * Many emits and broadcasts sent in one BatchEmit call, published in the
 * order they were added.
 *
 * ```php
 * $result = $io->batch()
 *     ->emit('a')                                 // uses the client's scope
 *     ->to('room1')->emit('chat', 'hello')         // scoped item, back to the batch
 *     ->of('/admin')->except('bots')->broadcast('stats', ['n' => 3])
 *     ->send();
 * ```
 *
 * Without atomic(), valid items are published and invalid ones are reported
 * in their ItemResult. With atomic(), one invalid item rejects the whole
 * batch with an InvalidArgumentException and nothing is published.
 */
final class Batch implements \Countable
{
    /** @var list<BatchItem> */
    private array $items = [];

    private bool $atomic = false;

    /**
     * Use Client::batch().
     *
     * @param CurlTransport $transport the client's transport
     * @param Scope $scope the scope items start from
     * @param float $timeout the deadline of send(), in seconds
     * @internal
     */
    public function __construct(
        private readonly CurlTransport $transport,
        private readonly Scope $scope,
        private readonly float $timeout,
    ) {
    }

    /**
     * Selects a namespace for the next item.
     *
     * @param string $namespace e.g. '/admin'
     * @return BatchOperator an operator whose emit()/broadcast() add an item
     */
    public function of(string $namespace): BatchOperator
    {
        return $this->operator()->of($namespace);
    }

    /**
     * Selects rooms for the next item.
     *
     * @param string|list<string> ...$rooms room names, or lists of them
     * @return BatchOperator an operator whose emit()/broadcast() add an item
     */
    public function to(string|array ...$rooms): BatchOperator
    {
        return $this->operator()->to(...$rooms);
    }

    /**
     * Same as to().
     *
     * @param string|list<string> ...$rooms room names, or lists of them
     * @return BatchOperator an operator whose emit()/broadcast() add an item
     */
    public function in(string|array ...$rooms): BatchOperator
    {
        return $this->operator()->to(...$rooms);
    }

    /**
     * Selects rooms to skip for the next item.
     *
     * @param string|list<string> ...$rooms room names, or lists of them
     * @return BatchOperator an operator whose emit()/broadcast() add an item
     */
    public function except(string|array ...$rooms): BatchOperator
    {
        return $this->operator()->except(...$rooms);
    }

    /**
     * Sets the volatile flag for the next item.
     *
     * @return BatchOperator an operator whose emit()/broadcast() add an item
     */
    public function volatile(): BatchOperator
    {
        return $this->operator()->volatile();
    }

    /**
     * Sets the compress flag for the next item.
     *
     * @param bool $compress true to compress, false not to
     * @return BatchOperator an operator whose emit()/broadcast() add an item
     */
    public function compress(bool $compress = true): BatchOperator
    {
        return $this->operator()->compress($compress);
    }

    /**
     * Selects a target for the next item.
     *
     * @param string $target the target name; '' for the default
     * @return BatchOperator an operator whose emit()/broadcast() add an item
     */
    public function target(string $target): BatchOperator
    {
        return $this->operator()->target($target);
    }

    /**
     * Adds an emit to the rooms of the batch's starting scope.
     *
     * @param string $event the event name
     * @param mixed ...$args the arguments; a named argument `idempotencyKey: 'k'`
     *        sets the item's idempotency key (not an argument)
     * @return self this batch
     * @throws EmitgateException locally when an argument cannot be encoded
     */
    public function emit(string $event, mixed ...$args): self
    {
        return $this->addEmit($this->scope, $event, $args);
    }

    /**
     * Adds a broadcast to the namespace of the batch's starting scope.
     *
     * @param string $event the event name
     * @param mixed ...$args the arguments; a named argument `idempotencyKey: 'k'`
     *        sets the item's idempotency key (not an argument)
     * @return self this batch
     * @throws EmitgateException locally when an argument cannot be encoded
     */
    public function broadcast(string $event, mixed ...$args): self
    {
        return $this->addBroadcast($this->scope, $event, $args);
    }

    /**
     * Makes the batch all-or-nothing: one invalid item rejects the whole call
     * and nothing is published.
     *
     * @param bool $atomic true for all-or-nothing
     * @return self this batch
     */
    public function atomic(bool $atomic = true): self
    {
        $this->atomic = $atomic;
        return $this;
    }

    /**
     * Returns how many items the batch holds.
     *
     * @return int the number of items
     */
    public function count(): int
    {
        return count($this->items);
    }

    /**
     * Sends the batch in one BatchEmit call.
     *
     * @return BatchResult one ItemResult per item, in order
     * @throws EmitgateException when the call fails (or, for an atomic batch,
     *         when any item is invalid)
     */
    public function send(): BatchResult
    {
        $request = new BatchEmitRequest();
        $request->setItems($this->items);
        $request->setAtomic($this->atomic);
        /** @var BatchEmitResponse $response */
        $response = Requests::call($this->transport, 'BatchEmit', $request, new BatchEmitResponse(), $this->timeout);
        $results = [];
        foreach ($response->getResults() as $r) {
            $violations = [];
            /** @var ProtoFieldViolation $v */
            foreach ($r->getViolations() as $v) {
                $violations[] = new FieldViolation($v->getField(), $v->getDescription());
            }
            $results[] = new ItemResult(
                Code::fromInt($r->getCode()),
                $r->getMessage(),
                $violations,
                (int) $r->getReceivers(),
                $r->getDuplicate(),
                $r->getStreamId() === '' ? null : $r->getStreamId()
            );
        }
        return new BatchResult(
            $results,
            (int) $response->getPublished(),
            (int) $response->getFailed(),
            (int) $response->getReceivers()
        );
    }

    /**
     * Adds an emit item; used by BatchOperator.
     *
     * @param Scope $scope the item's scope
     * @param string $event the event name
     * @param array<int|string, mixed> $args the arguments, and the named option `idempotencyKey`
     * @return self this batch
     * @internal
     */
    public function addEmit(Scope $scope, string $event, array $args): self
    {
        $prefix = 'items[' . count($this->items) . '].emit.';
        $this->items[] = (new BatchItem())->setEmit(Requests::emit($scope, $event, $args, $prefix));
        return $this;
    }

    /**
     * Adds a broadcast item; used by BatchOperator.
     *
     * @param Scope $scope the item's scope
     * @param string $event the event name
     * @param array<int|string, mixed> $args the arguments, and the named option `idempotencyKey`
     * @return self this batch
     * @internal
     */
    public function addBroadcast(Scope $scope, string $event, array $args): self
    {
        $prefix = 'items[' . count($this->items) . '].broadcast.';
        $this->items[] = (new BatchItem())->setBroadcast(Requests::broadcast($scope, $event, $args, $prefix));
        return $this;
    }

    private function operator(): BatchOperator
    {
        return new BatchOperator($this, $this->scope);
    }
}
