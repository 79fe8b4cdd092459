<?php

declare(strict_types=1);

namespace Emitgate;

use Emitgate\Exception\EmitgateException;
use Emitgate\Internal\Operators;
use Emitgate\Internal\Scope;

/**
 * The scope of one batch item: the same immutable operators as Client, and
 * emit()/broadcast() that add the item to the batch and return the batch.
 */
final class BatchOperator
{
    use Operators;

    /**
     * Use the operators of Batch.
     *
     * @param Batch $batch the batch items are added to
     * @param Scope $scope the item's scope
     * @internal
     */
    public function __construct(private readonly Batch $batch, private readonly Scope $scope)
    {
    }

    /**
     * Adds an emit to the selected rooms.
     *
     * @param string $event the event name
     * @param mixed ...$args the arguments, by position (the item's idempotency
     *        key is set with idempotencyKey())
     * @return Batch the batch, to add more items or send()
     * @throws EmitgateException locally when an argument cannot be encoded
     */
    public function emit(string $event, mixed ...$args): Batch
    {
        return $this->batch->addEmit($this->scope, $event, $args);
    }

    /**
     * Adds a broadcast to the selected namespace.
     *
     * @param string $event the event name
     * @param mixed ...$args the arguments, by position (the item's idempotency
     *        key is set with idempotencyKey())
     * @return Batch the batch, to add more items or send()
     * @throws EmitgateException locally when an argument cannot be encoded
     */
    public function broadcast(string $event, mixed ...$args): Batch
    {
        return $this->batch->addBroadcast($this->scope, $event, $args);
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
     * Returns an operator with another scope on the same batch.
     *
     * @param Scope $scope the new scope
     * @return static the operator
     */
    protected function withScope(Scope $scope): static
    {
        return new static($this->batch, $scope);
    }
}
