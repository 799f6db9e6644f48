// Memory latency on this machine: a dependent chain of misses against eight independent
// chains, and the cost of first touching fresh memory (docs/PERFORMANCE.md, 2026-12-03
// third session). gcc -O2 -o latency latency.c && ./latency
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <time.h>
#include <sys/mman.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(){
  size_t n = (size_t)512<<20; // 512 MB
  uint64_t *a = aligned_alloc(2<<20, n); madvise(a,n,MADV_HUGEPAGE);
  size_t m = n/8;
  double t0=now(); for(size_t i=0;i<m;i++) a[i]=i; double t1=now();
  printf("first touch %.3f s/GB\n",(t1-t0)/(n/1e9));
  // random permutation chase over cache lines
  size_t lines = n/64; uint32_t *perm = malloc(lines*4);
  for(size_t i=0;i<lines;i++) perm[i]=i;
  srand(1); for(size_t i=lines-1;i>0;i--){size_t j=((size_t)rand()*RAND_MAX+rand())%(i+1); uint32_t t=perm[i];perm[i]=perm[j];perm[j]=t;}
  for(size_t i=0;i<lines;i++) a[(size_t)perm[i]*8] = (size_t)perm[(i+1)%lines]*8;
  size_t p=0; size_t steps=5000000; t0=now(); for(size_t i=0;i<steps;i++) p=a[p]; t1=now();
  printf("dependent miss %.1f ns (%zu)\n",(t1-t0)/steps*1e9,p);
  // independent: 8 parallel chains
  size_t q[8]; for(int k=0;k<8;k++) q[k]=(size_t)perm[k*1000]*8;
  t0=now(); for(size_t i=0;i<steps/8;i++) for(int k=0;k<8;k++) q[k]=a[q[k]]; t1=now();
  printf("8-way parallel miss %.1f ns per access (%zu)\n",(t1-t0)/steps*1e9,q[0]+q[7]);
}
