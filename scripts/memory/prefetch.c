// Software prefetch against a miss hidden behind 400 instructions of work a step: none,
// a group of 16 addresses prefetched first, a group touched by loads first
// (docs/PERFORMANCE.md, 2026-12-03 third session). gcc -O2 -o prefetch prefetch.c && ./prefetch
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
#include <sys/mman.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static inline uint64_t work(uint64_t v){ for(int i=0;i<400;i++){ v = v*6364136223846793005ull + 1442695040888963407ull; } return v; }
int main(int argc,char**argv){
  size_t n = (size_t)1024<<20; uint64_t *a = aligned_alloc(2<<20, n); madvise(a,n,MADV_HUGEPAGE);
  size_t m = n/8; for(size_t i=0;i<m;i++) a[i]=(i*2654435761u) % m;
  size_t steps=1000000; uint32_t *idx = malloc(steps*4); uint64_t x=88172645463325252ull;
  for(size_t i=0;i<steps;i++){ x^=x<<13;x^=x>>7;x^=x<<17; idx[i]= x % m; }
  double t0,t1; uint64_t s=0;
  t0=now(); for(size_t i=0;i<steps;i++){ s = work(s + a[idx[i]]); } t1=now();
  printf("work+1 miss, no prefetch: %.1f ns per item\n",(t1-t0)/steps*1e9);
  t0=now(); for(size_t i=0;i<steps;i++){ s = work(s); } t1=now();
  printf("work only: %.1f ns per item\n",(t1-t0)/steps*1e9);
  t0=now(); for(size_t g=0;g<steps;g+=16){ for(int k=0;k<16;k++) __builtin_prefetch(&a[idx[g+k]]); for(int k=0;k<16;k++) s = work(s + a[idx[g+k]]); } t1=now();
  printf("work+1 miss, group prefetch 16: %.1f ns per item\n",(t1-t0)/steps*1e9);
  volatile uint64_t sink=0;
  t0=now(); for(size_t g=0;g<steps;g+=16){ uint64_t t=0; for(int k=0;k<16;k++) t+=a[idx[g+k]]; sink=t; for(int k=0;k<16;k++) s = work(s + a[idx[g+k]]); } t1=now();
  printf("work+1 miss, group touch-load 16: %.1f ns per item (%lu)\n",(t1-t0)/steps*1e9, s);
}
