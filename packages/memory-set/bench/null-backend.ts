import type { MappingBackend } from '../src/index.js';

/** A backend that maps nothing (every call succeeds at once): the benches measure the set alone. */
export class NullBackend<A extends number = number> implements MappingBackend<number, null, A> {
  readonly pageSize: number;

  constructor(pageSize: number) {
    this.pageSize = pageSize;
  }
  map(): boolean {
    return true;
  }
  unmap(): boolean {
    return true;
  }
  protect(): boolean {
    return true;
  }
  split(): NullBackend<A> {
    return new NullBackend<A>(this.pageSize);
  }
  shrinkLeft(): void {}
  shrinkRight(): void {}
  clone(): NullBackend<A> {
    return new NullBackend<A>(this.pageSize);
  }
}
